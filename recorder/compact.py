"""Merge each closed partition's small files into one sorted file.

A cron run every few minutes leaves many small files per `pipeline/dt` partition.
Compaction rewrites a partition as one file, keeping only the latest `recorded_at`
per natural key, then removes the files it merged. Order matters for safety:

1. read the partition's files as listed at the start (a collector writing
   meanwhile adds new files, which are not in that list and are kept);
2. write the merged file outside the table tree and rename it into the partition;
3. unlink the merged inputs.

Between 2 and 3 a reader sees both the merged file and its inputs: the query
views deduplicate on the natural key, so answers do not change. A crash between
2 and 3 leaves the same harmless duplicates, merged away by the next compaction.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from queries.views import ident, latest_only_sql, natural_key, read_parquet_sql
from recorder.errors import UserError, first_line
from recorder.lock import data_lock
from recorder.schemas import TABLES
from recorder.store import clean_tmp, write_parquet_atomic

log = logging.getLogger("cprec.compact")

COMPACTED_PREFIX = "compact-"
LOCK_FILE = ".compact.lock"  # not the collector's: compaction runs beside a collector
TMP_DIR = ".tmp-compact"


@dataclass
class CompactResult:
    partitions: int = 0
    files_before: int = 0
    files_after: int = 0
    rows_before: int = 0
    rows_after: int = 0
    skipped_open: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)


def partitions(root: Path, table: str) -> list[tuple[str | None, date, Path]]:
    """(pipeline, dt, directory) for every partition of a table."""
    base = root / table
    if not base.is_dir():
        return []
    pattern = "pipeline=*/dt=*" if TABLES[table].per_pipeline else "dt=*"
    found = []
    for d in sorted(base.glob(pattern)):
        if not d.is_dir():
            continue
        pipeline = d.parent.name.removeprefix("pipeline=") if TABLES[table].per_pipeline else None
        try:
            dt = date.fromisoformat(d.name.removeprefix("dt="))
        except ValueError:
            continue
        found.append((pipeline, dt, d))
    return found


def merge_files(table: str, files: list[Path]) -> pa.Table:
    """The deduplicated, sorted rows of `files` in the table's canonical schema."""
    spec = TABLES[table]
    con = duckdb.connect()
    try:
        # The same "latest recording wins" rule as the query views.
        rel = con.sql(
            f"{read_parquet_sql(spec, '$files')} {latest_only_sql(spec)} "
            f"ORDER BY {', '.join(map(ident, natural_key(spec)))}",
            params={"files": [str(f) for f in files]},
        )
        merged = rel.to_arrow_table()
    finally:
        con.close()
    # Older files may lack newer columns: add them as NULL, in canonical order.
    columns = []
    for fld in spec.schema:
        if fld.name in merged.column_names:
            columns.append(merged.column(fld.name).cast(fld.type))
        else:
            columns.append(pa.nulls(merged.num_rows, fld.type))
    return pa.Table.from_arrays(columns, schema=spec.schema)


def compact(
    root: Path,
    *,
    tables: list[str] | None = None,
    min_age_days: int = 1,
    today: date | None = None,
) -> CompactResult:
    """Compact every partition with more than one file whose day ended over `min_age_days` ago."""
    today = today or date.today()
    cutoff = today - timedelta(days=min_age_days)
    result = CompactResult()
    with data_lock(root, LOCK_FILE, holder="compaction"):
        clean_tmp(root, TMP_DIR)
        for table in tables or list(TABLES):
            for pipeline, dt, directory in partitions(root, table):
                files = sorted(directory.glob("*.parquet"))
                if len(files) < 2:
                    continue
                if dt >= cutoff:
                    result.skipped_open += 1
                    continue
                _compact_partition(root, table, pipeline, dt, files, result)
    return result


def _compact_partition(
    root: Path, table: str, pipeline: str | None, dt: date, files: list[Path], result: CompactResult
) -> None:
    try:
        merged = merge_files(table, files)
    except (duckdb.IOException, duckdb.InvalidInputException) as e:
        # Nothing was written or removed: stop, so a bad file is looked at, not buried.
        raise UserError(
            f"cannot compact {files[0].parent}: {first_line(e)}; move that file out and run again"
        ) from None
    rows_before = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    dest = files[0].parent / f"{COMPACTED_PREFIX}{uuid.uuid4().hex[:12]}.parquet"
    write_parquet_atomic(merged, dest, root, TMP_DIR)
    for f in files:
        f.unlink(missing_ok=True)
    result.written.append(dest)
    result.removed.extend(files)
    result.partitions += 1
    result.files_before += len(files)
    result.files_after += 1
    result.rows_before += rows_before
    result.rows_after += merged.num_rows
    result.tables[table] = result.tables.get(table, 0) + 1
    log.info(
        "compacted %s pipeline=%s dt=%s: %d files, %d -> %d rows",
        table, pipeline, dt, len(files), rows_before, merged.num_rows,
    )  # fmt: skip
