"""Merge each closed partition's small files into one sorted file.

A cron run every few minutes leaves many small files per `pipeline/dt` partition.
Compaction rewrites a partition as one file, keeping only the latest `recorded_at`
per natural key. Order matters for safety:

1. read the partition's files as listed at the start (a collector writing
   meanwhile adds new files, which are not in that list and are kept);
2. write the merged file outside the table tree and rename it into the partition;
3. record the merged inputs as replaced (`<root>/.compact-replaced.jsonl`);
4. delete replaced files only once their grace period has passed and while no
   cprec process reads the Parquet files (the read lock, recorder/lock.py): a
   reader never finds a file gone that it listed, and readers cprec does not know
   of (the DuckDB CLI on a `cprec db` file, Athena) get the grace period.

Until 4, `raw.<table>` shows the merged rows twice (the merged file and its
inputs); the deduplicated views answer exactly as before. A crash anywhere leaves
at worst such duplicates, merged away by the next compaction.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from recorder import cache, layout
from recorder.errors import CprecError, UserError, WriteError, first_line
from recorder.lock import COMPACT_LOCK_FILE
from recorder.root import DataRoot
from recorder.schemas import TABLES
from recorder.store import sort_rows, write_parquet_atomic
from recorder.views import check_files

log = logging.getLogger("cprec.compact")

COMPACTED_PREFIX = "compact-"
TMP_DIR = ".tmp-compact"
REPLACED_FILE = ".compact-replaced.jsonl"
GRACE = timedelta(hours=1)
READER_PATIENCE_S = 5.0  # how long to wait for readers to finish before deleting


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
    replaced: list[Path] = field(default_factory=list)  # merged inputs, deleted after grace
    removed: list[Path] = field(default_factory=list)  # replaced files deleted by this run
    waiting: int = 0  # replaced files still in place (grace period or readers)


def merge_files(root: DataRoot, table: str, files: list[Path]) -> pa.Table:
    """The deduplicated rows of `files` (under `root`) in the table's canonical schema, in
    the order the collector writes them (store.sort_rows), to be written as it writes them."""
    spec = TABLES[table]
    con = duckdb.connect()
    root.attach(con)
    params = {"files": [str(f) for f in files]}
    try:
        check_files(con, spec, "$files", params)
        rel = con.sql(
            f"SELECT * FROM ({layout.read_parquet_sql(spec, '$files')}) "
            f"{layout.latest_only_sql(spec)}",
            params=params,
        )
        merged = rel.select(*map(layout.ident, spec.schema.names)).to_arrow_table()
    finally:
        con.close()
    return sort_rows(table, merged.cast(spec.schema))


def compact(
    root: str | Path | DataRoot,
    *,
    tables: list[str] | None = None,
    min_age_days: int = 1,
    today: date | None = None,
    grace: timedelta = GRACE,
    now: datetime | None = None,
) -> CompactResult:
    """Compact every partition with more than one file whose day ended over `min_age_days` ago."""
    root = DataRoot.of(root)
    today = today or date.today()
    now = now or datetime.now(UTC)
    cutoff = today - timedelta(days=min_age_days)
    result = CompactResult()
    with root.lock(COMPACT_LOCK_FILE, holder="compaction"):
        root.clean_tmp(TMP_DIR)
        replaced = _load_replaced(root)
        for table in tables or list(TABLES):
            for pipeline, dt, directory in layout.partitions(root, table):
                files = [f for f in layout.partition_files(root, directory) if f not in replaced]
                if len(files) < 2:
                    continue
                if dt >= cutoff:
                    result.skipped_open += 1
                    continue
                _compact_partition(root, table, pipeline, dt, files, result)
                replaced.update(dict.fromkeys(files, now))
                _save_replaced(root, replaced)
        due = [p for p, at in replaced.items() if at + grace <= now]
        if due:
            with root.no_readers(READER_PATIENCE_S) as alone:
                if alone:
                    for p in due:
                        p.unlink(missing_ok=True)
                        del replaced[p]
                    result.removed = due
                    _save_replaced(root, replaced)
        result.waiting = len(replaced)
        if result.written or result.removed:
            _tell_cache(root, result)
    return result


def _tell_cache(root: DataRoot, result: CompactResult) -> None:
    """Best effort: the cache's answers do not change with compaction, only its list of
    files; a cache that misses this learns it at its next whole-tree refresh."""
    if not cache.cache_path(root).exists():
        return
    try:
        cache.refresh(root, written=result.written, removed=result.removed)
    except (duckdb.Error, CprecError) as e:
        log.warning("query cache not told of the compaction (%s)", first_line(e))


def _compact_partition(
    root: DataRoot,
    table: str,
    pipeline: str | None,
    dt: date,
    files: list[Path],
    result: CompactResult,
) -> None:
    try:
        merged = merge_files(root, table, files)
    except (duckdb.IOException, duckdb.InvalidInputException) as e:
        # Nothing was written or removed: stop, so a bad file is looked at, not buried.
        raise UserError(
            f"cannot compact {files[0].parent}: {first_line(e)}; move that file out and run again"
        ) from None
    rows_before = sum(root.parquet_metadata(f).num_rows for f in files)
    dest = files[0].parent / f"{COMPACTED_PREFIX}{uuid.uuid4().hex[:12]}.parquet"
    try:
        write_parquet_atomic(merged, dest, root, TMP_DIR)
    except OSError as e:  # a full disk: the inputs are untouched, nothing half-written
        raise WriteError(f"cannot write {dest.parent}: {e.strerror or e}") from None
    result.written.append(dest)
    result.replaced.extend(files)
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


def _load_replaced(root: DataRoot) -> dict[Path, datetime]:
    """Replaced files still on disk -> when they were replaced. A lost list only leaves
    duplicates that the next compaction merges again."""
    path = root / REPLACED_FILE
    if not path.exists():
        return {}
    found = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
            file, at = root / entry["path"], datetime.fromisoformat(entry["at"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a crash
        if file.exists():
            found[file] = at
    return found


def _save_replaced(root: DataRoot, replaced: dict[Path, datetime]) -> None:
    lines = "".join(
        json.dumps({"path": str(p.relative_to(root.path)), "at": at.isoformat()}) + "\n"
        for p, at in sorted(replaced.items())
    )
    # renamed over the list, or one PUT: the list is replaced whole
    tmp = root / TMP_DIR / f"replaced-{uuid.uuid4().hex}"
    root.publish_bytes(root / REPLACED_FILE, lines.encode(), tmp)
