"""What `cprec export otel` sends, read from the views: terminal executions in the order
the export cursor follows, each with its stage runs, action executions and revisions.

This module only reads and shapes rows (`sql/otel/*.sql`); the spans, the destinations
and the cursor are recorder/otel.py's. Rows come back as plain dicts (timestamps as
aware datetimes), one per execution, so the span builder needs no DuckDB.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from importlib import resources

import duckdb

from recorder.reader import data_errors

KEY = ("account_id", "region", "pipeline", "execution_id")


def _sql(name: str) -> str:
    return resources.files("queries").joinpath("sql", "otel", name).read_text(encoding="utf-8")


def key_of(row: dict) -> str:
    return "|".join(row[k] for k in KEY)


def bound(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The latest recorded_at of an execution row: read while no collector runs (the
    caller holds the collector's lock), every row up to it is written for good."""
    (last,) = con.execute("SELECT max(recorded_at) FROM executions").fetchall()[0]
    return last


def batch(
    con: duckdb.DuckDBPyConnection,
    *,
    bound: datetime,
    after: dict | None,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
    pipelines: Sequence[str] = (),
    data_root=None,
) -> list[dict]:
    """The next `limit` terminal executions recorded up to `bound` after the cursor
    `after` ({recorded_at, account_id, region, pipeline, execution_id}; None: from the
    start), each a dict of its columns with `stages`, `actions` and `revisions` lists."""
    after = after or {}
    params = {
        "bound": bound,
        "since": since,
        "until": until,
        "pipelines": list(pipelines),
        "limit": limit,
        **{f"after_{k}": after.get(k) for k in ("recorded_at", *KEY)},
    }
    with data_errors(data_root):
        executions = con.sql(_sql("executions.sql"), params=params).to_arrow_table().to_pylist()
        if not executions:
            return []
        keys = {key_of(e): e for e in executions}
        for e in executions:
            e["stages"], e["actions"], e["revisions"] = [], [], []
        for part, file in (("stages", "stages.sql"), ("actions", "actions.sql"),
                           ("revisions", "revisions.sql")):  # fmt: skip
            rows = con.sql(_sql(file), params={"keys": list(keys)}).to_arrow_table()
            for row in rows.to_pylist():
                keys[key_of(row)][part].append(row)
    return executions
