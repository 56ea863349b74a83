"""What `cprec export otel` sends, read from the views: terminal executions in the order
the export cursor follows, each with its stage runs, action executions and revisions.

This module only reads and shapes rows (`sql/otel/*.sql`); the spans, the destinations
and the cursor are recorder/otel.py's. Rows come back as plain dicts (timestamps as
aware datetimes), one per execution, so the span builder needs no DuckDB.

What is left to send is read once, into temporary tables of the connection (DuckDB
spills them to disk past its memory limit): over the Parquet files, the views and
`stage_runs` are computed from every file they read, so reading them again for each
batch would cost a whole pass per batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from importlib import resources

import duckdb

from recorder.reader import data_errors

KEY = ("account_id", "region", "pipeline", "execution_id")
PARTS = {"stages": "otel_stages", "actions": "otel_actions", "revisions": "otel_revisions"}


@functools.cache  # read once a process, not once a batch
def _sql(name: str) -> str:
    return resources.files("queries").joinpath("sql", "otel", name).read_text(encoding="utf-8")


def key_of(row: dict) -> str:
    return "|".join(row[k] for k in KEY)


def bound(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The latest recorded_at of an execution row: read while no collector runs (the
    caller holds the collector's lock), every row up to it is written for good."""
    (last,) = con.execute("SELECT max(recorded_at) FROM executions").fetchall()[0]
    return last


def _after(after: dict | None) -> dict:
    after = after or {}
    return {f"after_{k}": after.get(k) for k in ("recorded_at", *KEY)}


class Selection:
    """The executions an export sends, batch after batch (`batch`)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        bound: datetime | None,
        since: datetime | None = None,
        until: datetime | None = None,
        pipelines: Sequence[str] = (),
        data_root=None,
    ) -> None:
        self.con, self.bound, self.data_root = con, bound, data_root
        self.filters = {"since": since, "until": until, "pipelines": list(pipelines)}
        self._held = False

    def _hold(self, after: dict | None) -> None:
        """The executions after `after` (the cursor at the start), and their parts, as
        temporary tables."""
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE otel_executions AS {_sql('executions.sql')}",
            {"bound": self.bound, **self.filters, **_after(after)},
        )
        for part, table in PARTS.items():
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {_sql(part + '.sql')}")
        self._held = True

    def batch(self, after: dict | None, limit: int) -> list[dict]:
        """The next `limit` executions after the cursor `after` ({recorded_at,
        account_id, region, pipeline, execution_id}; None: from the start), each a dict
        of its columns with its `stages`, `actions` and `revisions` lists."""
        if self.bound is None:
            return []
        with data_errors(self.data_root):
            if not self._held:
                self._hold(after)
            params = {"limit": limit, **_after(after)}
            executions = self.con.sql(_sql("next.sql"), params=params).to_arrow_table()
            executions = executions.to_pylist()
            if not executions:
                return []
            keys = {key_of(e): e for e in executions}
            for e in executions:
                e["stages"], e["actions"], e["revisions"] = [], [], []
            for part, table in PARTS.items():
                sql = _sql("part.sql").replace("{part}", table)
                rows = self.con.sql(sql, params={"keys": list(keys)}).to_arrow_table()
                for row in rows.to_pylist():
                    keys[key_of(row)][part].append(row)
        return executions
