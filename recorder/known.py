"""The incremental cursor: what is already stored, and what a run must fetch.

`load_known` reads, once per run and through the same deduplicated views as every
query (recorder/reader.py), each pipeline's watermark, recorded executions, last
state hash and last definition version: derived from the data itself, never from a
side file that could disagree with it. `Cursor` turns that into the paging bound
and the "changed" test of one pipeline's executions (the overlap and the lookback
live here and nowhere else).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from recorder import reader
from recorder.errors import UserError, first_line
from recorder.flatten import has_stage_conditions, ts
from recorder.root import DataRoot
from recorder.schemas import TERMINAL_EXECUTION

OVERLAP = timedelta(hours=6)  # re-read before the watermark: late starts, clock skew
LOOKBACK = timedelta(days=31)  # recorded executions loaded before the paging bound
RETENTION = timedelta(days=365)  # AWS keeps execution history for 12 months
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR_TABLES = ("executions", "stage_states", "pipelines")  # all that load_known reads


def to_us(value: datetime | None) -> int | None:
    """Exact epoch microseconds (no float rounding), for comparing stored timestamps."""
    return None if value is None else (value - EPOCH) // timedelta(microseconds=1)


def from_us(value: int | None) -> datetime | None:
    return None if value is None else EPOCH + timedelta(microseconds=value)


@dataclass
class Known:
    """One pipeline's stored history, as far as collection needs it."""

    watermark: datetime | None = None  # latest recorded execution start
    oldest_open: datetime | None = None  # start of the oldest recorded non-terminal execution
    # execution_id -> (status, last_update_time in epoch µs), latest recording of each
    executions: dict[str, tuple[str | None, int | None]] = field(default_factory=dict)
    state_hash: str | None = None
    version: int | None = None
    # Whether the latest recorded definition has stage conditions (None: unknown). Only
    # conditions produce rule executions, so without them ListRuleExecutions is skipped.
    has_conditions: bool | None = None


def load_known(
    root: str | Path | DataRoot,
    account_id: str,
    region: str,
    *,
    open_floor: datetime,
    overlap: timedelta = OVERLAP,
    lookback: timedelta = LOOKBACK,
    cache: bool = False,
) -> dict[str, Known]:
    """Per pipeline: watermark, open executions, recent recorded executions, hash, version.

    Non-terminal executions that started before `open_floor` are ignored (AWS no longer
    keeps them). Recorded executions are loaded back to `lookback` before the pipeline's
    paging lower bound: the listing's last page reaches back past the bound (100 items),
    and a revived execution on it is recognised if it started within the lookback,
    without holding a whole year of history in memory.

    `cache`: read the query cache (recorder/cache.py) instead of every Parquet file
    when it holds the last completed state; the collector passes it when it was current.
    """
    known: dict[str, Known] = {}
    params = {"account": account_id, "region": region}
    scope = "WHERE account_id = $account AND region = $region"
    con = reader.connect(root, cache=None if cache else False, tables=CURSOR_TABLES)
    try:
        terminal = ", ".join(f"'{s}'" for s in sorted(TERMINAL_EXECUTION))
        rows = con.execute(
            f"""
            WITH latest AS (
                SELECT pipeline, execution_id, status, start_time, last_update_time
                FROM executions {scope}
            ), marks AS (
                SELECT pipeline, max(start_time) AS watermark,
                       min(start_time) FILTER (
                           WHERE coalesce(status, '') NOT IN ({terminal})
                             AND start_time >= $open_floor) AS oldest_open
                FROM latest GROUP BY pipeline
            )
            SELECT l.pipeline, l.execution_id, l.status, epoch_us(l.last_update_time),
                   epoch_us(m.watermark), epoch_us(m.oldest_open)
            FROM latest l JOIN marks m USING (pipeline)
            WHERE l.start_time IS NULL OR m.watermark IS NULL
               OR l.start_time >= least(m.watermark - $overlap,
                                        coalesce(m.oldest_open, m.watermark)) - $lookback
            """,
            {**params, "open_floor": open_floor, "overlap": overlap, "lookback": lookback},
        ).fetchall()
        for pipeline, execution_id, status, updated, watermark, oldest_open in rows:
            k = known.setdefault(
                pipeline, Known(watermark=from_us(watermark), oldest_open=from_us(oldest_open))
            )
            k.executions[execution_id] = (status, updated)
        for pipeline, digest in con.execute(
            f"""SELECT pipeline, state_hash FROM stage_states {scope}
                QUALIFY row_number() OVER (
                    PARTITION BY pipeline ORDER BY snapshot_at DESC, recorded_at DESC) = 1""",
            params,
        ).fetchall():
            known.setdefault(pipeline, Known()).state_hash = digest
        for pipeline, version, definition in con.execute(
            f"""SELECT pipeline, pipeline_version, definition_json FROM pipelines {scope}
                QUALIFY row_number() OVER (
                    PARTITION BY pipeline ORDER BY recorded_at DESC) = 1""",
            params,
        ).fetchall():
            k = known.setdefault(pipeline, Known())
            k.version = version
            k.has_conditions = None if definition is None else has_stage_conditions(definition)
    except (duckdb.IOException, duckdb.InvalidInputException) as e:
        # The watermark cannot be trusted without every file: stop before fetching anything.
        raise UserError(
            f"cannot read the recorded data ({first_line(e)}); "
            f"move that file out of {root} and run again"
        ) from None
    finally:
        con.close()
    return known


@dataclass(frozen=True)
class Cursor:
    """Where one pipeline's collection resumes (in the spirit of dlt's `Incremental`).

    - window: executions that started from here on are listed with their children
      pipeline-wide: the watermark minus the overlap (first run: `since`);
    - bound: ListPipelineExecutions is paged back to here: the window, or the start of
      the oldest recorded execution that had not ended (re-polled until it ends);
    - changed: not recorded yet (and not older than `since`), recorded before it
      ended, or recorded with another status or lastUpdateTime.
    """

    known: Known
    since: datetime

    @property
    def window(self) -> datetime:
        return self.since if self.known.watermark is None else self.known.watermark - OVERLAP

    @property
    def bound(self) -> datetime:
        oldest_open = self.known.oldest_open
        return min(self.window, oldest_open) if oldest_open else self.window

    def in_window(self, start: datetime | None) -> bool:
        # The model lets startTime be absent (the seed sample has none): always in.
        return start is None or start >= self.window

    def is_changed(self, summary: dict) -> bool:
        recorded = self.known.executions.get(summary["pipelineExecutionId"])
        if recorded is None:
            # Unrecorded and older than the bound: outside the window (the last page
            # reaches past the bound), or older than --since.
            start = ts(summary.get("startTime"))
            return start is None or start >= max(self.bound, self.since)
        status, updated = recorded
        return (
            status not in TERMINAL_EXECUTION
            or status != summary.get("status")
            or updated != to_us(ts(summary.get("lastUpdateTime")))
        )
