"""Atomic, partitioned Parquet writes under the data root.

Files go where recorder/layout.py says, named part-<run>-<n>.parquet. On disk they
are written under <root>/.tmp/ (outside every table tree, so no reader sees them),
fsynced and renamed into place; in S3 each is one PUT of the whole file, which S3
publishes whole or not at all.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from recorder.layout import partition_dir
from recorder.root import DataRoot
from recorder.schemas import TABLES, to_arrow
from recorder.testhooks import checkpoint

TMP_DIR = ".tmp"

# How every data file is encoded (collector and compaction alike; bench/storage.py
# measures each choice against the raw JSON of the API responses). A file holds one
# pipeline-day of one table, a few hundred rows at most, so the fixed cost per column
# chunk (page headers, footer) weighs as much as the values:
# - no statistics (min/max in every page header and the footer) and no serialized
#   Arrow schema in the footer: no reader uses either (DuckDB and Athena read the Parquet
#   types, pyarrow reads the same schema back from them; partition pruning is by path);
# - strings dictionary-encoded only where values repeat (a unique or constant column
#   is smaller plain), integers and timestamps DELTA_BINARY_PACKED;
# - rows sorted so that alike values are adjacent (WRITE_ORDER).
COMPRESSION = "zstd"
DICTIONARY_MAX_SHARE = 0.25  # dictionary when distinct values <= this share of the rows
# Row order within a file, after account_id and region; other tables: their natural key.
WRITE_ORDER = {
    "action_executions": ("stage", "action", "start_time", "action_execution_id"),
    "rule_executions": ("stage", "rule", "start_time", "rule_execution_id"),
}
# Test hook "<n>[:<seconds>]": sleep before the n-th rename of this process, so a test
# can SIGKILL a collector deterministically between writing a file and publishing it.
PAUSE_ENV = "CPREC_TEST_PAUSE_BEFORE_RENAME"
_renames = itertools.count(1)


def _test_pause() -> None:
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    nth, _, seconds = spec.partition(":")
    if next(_renames) == int(nth):
        time.sleep(float(seconds or 60))


def sort_key(table: str) -> list[str]:
    """The columns a file's rows are sorted by (ascending, NULLs last)."""
    return ["account_id", "region", *WRITE_ORDER.get(table, TABLES[table].key)]


def sort_rows(table: str, data: pa.Table) -> pa.Table:
    """`data` in the order its file stores it (stable: ties keep their order)."""
    return data.sort_by([(c, "ascending") for c in sort_key(table)])


def parquet_options(data: pa.Table) -> dict:
    """pyarrow.parquet.write_table options for the file holding `data`."""
    strings, numbers = [], {}
    for f in data.schema:
        if pa.types.is_string(f.type):
            distinct = len(data[f.name].unique())  # NULL counts as a value
            if 1 < distinct <= DICTIONARY_MAX_SHARE * data.num_rows:
                strings.append(f.name)
        elif pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type):
            numbers[f.name] = "DELTA_BINARY_PACKED"
    return {
        "compression": COMPRESSION,
        "use_dictionary": strings,
        "column_encoding": numbers,
        "write_statistics": False,
        "store_schema": False,
    }


def write_parquet_atomic(table_data, dest: Path, root: DataRoot, tmp_name: str = TMP_DIR) -> None:
    """Write to <root>/<tmp_name>, fsync, then rename to dest: readers see all or nothing.

    Encoded as parquet_options says; rows are written in the order given (sort_rows).

    Each writer kind (collector, compaction) has its own temporary directory, cleaned
    only under that writer's lock, so one never removes the other's file in flight.
    In S3 the file is serialised in memory and PUT whole (no temporary object:
    DataRoot.publish).
    """
    options = parquet_options(table_data)
    root.publish(
        dest,
        lambda where: pq.write_table(table_data, where, **options),
        root / tmp_name / f"{uuid.uuid4().hex}.parquet.tmp",
        ready=_test_pause,
    )


def write_rows(
    root: str | Path | DataRoot,
    table: str,
    rows: Iterable[dict],
    *,
    pipeline: str | None,
    run_id: str,
    written: list[Path] | None = None,
) -> list[Path]:
    """Write rows (each with a `dt` date key, stripped before writing) one file per partition,
    sorted by sort_rows.

    Every file published is appended to `written` as it is, so a caller still knows
    them when a later partition's write fails.
    """
    root = DataRoot.of(root)
    by_dt: dict[date, list[dict]] = defaultdict(list)
    for row in rows:
        row = dict(row)
        by_dt[row.pop("dt")].append(row)
    written = [] if written is None else written
    for dt, part in sorted(by_dt.items()):
        dest = (
            partition_dir(root, table, pipeline, dt)
            / f"part-{run_id}-{uuid.uuid4().hex[:8]}.parquet"
        )
        checkpoint(f"publish:{table}")
        write_parquet_atomic(sort_rows(table, to_arrow(table, part)), dest, root)
        written.append(dest)
    return written


class Batch:
    """Rows of one pipeline buffered per table, written one file per (table, dt).

    Rows arrive in groups (`add`): the rows that belong together, such as an execution
    and every row under it, or a state snapshot. A group is never split across two
    flushes, and `flush` writes tables in `order`, dependants first, so whatever the
    flush bound, the worker count or the order of a group's tables, a reader (or the
    next run, after a crash at any publish) never sees a row whose dependants are
    missing: the execution after its children, the stage_states rows that carry a
    snapshot's hash after the rest of the snapshot, the definition after its actions.

    A flush also happens when the oldest buffered row has waited `max_age_s`, so a run
    that is killed (a scheduler's timeout) has published what it fetched until shortly
    before.
    """

    def __init__(
        self,
        root: str | Path | DataRoot,
        pipeline: str | None,
        run_id: str,
        common: dict,
        order: Iterable[str],
        limit: int = 50_000,
        max_age_s: float | None = None,
    ) -> None:
        self.root, self.pipeline, self.run_id = DataRoot.of(root), pipeline, run_id
        self.common, self.order, self.limit = common, tuple(order), limit
        self.max_age_s = max_age_s
        self.rows: dict[str, list[dict]] = defaultdict(list)
        self.buffered = 0
        self.since: float | None = None  # when the oldest buffered row was added
        self.peak = 0  # the most rows ever buffered at once
        self.written: dict[str, int] = defaultdict(int)
        self.files: list[Path] = []  # every file written, for the query cache
        self.broken = False  # a write failed: nothing more is written

    def add(self, group: Mapping[str, Iterable[dict]], dt: date) -> None:
        """Buffer one group of rows ({table: rows}, all of partition day `dt`), first
        writing what is buffered if the group would not fit under the limit or the
        buffer is older than `max_age_s`: at most `limit` rows are ever held (more only
        when a single group is larger)."""
        unknown = set(group) - set(self.order)
        if unknown:
            raise ValueError(f"no write order for {sorted(unknown)}")
        rows = {t: [{**self.common, **row, "dt": dt} for row in rs] for t, rs in group.items()}
        size = sum(map(len, rows.values()))
        if self.buffered and (self.buffered + size > self.limit or self._expired()):
            self.flush()
        for table, rs in rows.items():
            self.rows[table].extend(rs)
        if size and self.since is None:
            self.since = time.monotonic()
        self.buffered += size
        self.peak = max(self.peak, self.buffered)

    def _expired(self) -> bool:
        return (
            self.max_age_s is not None
            and self.since is not None
            and time.monotonic() - self.since >= self.max_age_s
        )

    def flush(self) -> None:
        """Write everything buffered, in order. A failed write ends the batch: what is
        still buffered (the rows that depend on the ones not written) is dropped and
        every later flush writes nothing, so no execution is ever published without
        its children."""
        self.since = None
        if self.broken:
            self.rows.clear()
            self.buffered = 0
            return
        try:
            for table in self.order:
                rows = self.rows.pop(table, None)
                if rows:
                    write_rows(self.root, table, rows, pipeline=self.pipeline,
                               run_id=self.run_id, written=self.files)  # fmt: skip
                    self.written[table] += len(rows)
        except BaseException:
            self.broken = True
            self.rows.clear()
            raise
        finally:
            self.buffered = sum(map(len, self.rows.values()))
