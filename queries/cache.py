"""A local DuckDB cache of the Parquet tables, refreshed incrementally.

Why: at a year of a 500-pipeline organisation the daily partitions hold hundreds of
thousands of files, and every query over Parquet views lists, opens and
deduplicates all of them. The cache keeps each table deduplicated (latest
`recorded_at` per natural key) plus a materialised `stage_runs`, so named queries
read columnar tables instead. The Parquet files stay the source of truth: the
cache can be deleted at any time and rebuilt with `cprec cache`.

File: <root>/.cache/cprec.duckdb. Inside, schema `cache` holds one table per
Parquet table (canonical columns + `pipeline`, `dt`), `stage_runs`, and `files`
(every Parquet file already loaded). A refresh:

1. finds new files (not in `files`) and vanished ones (compacted or deleted);
2. reloads every partition that lost a file (its rows are deleted, then all its
   current files are loaded), so compaction and manual deletes are reflected;
3. upserts new rows: a row replaces the cached one with the same key when its
   `recorded_at` is not older;
4. recomputes `stage_runs` for the executions whose action executions changed.

Writers that know what they wrote (the collector, compaction) pass their file
lists, so no directory walk is needed; `cprec cache` walks the tree.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from queries.views import (
    columns,
    ident,
    latest_only_sql,
    natural_key,
    read_parquet_sql,
    sql_file,
    typed_empty_sql,
)
from recorder.errors import UserError, first_line
from recorder.schemas import TABLES, Table
from recorder.store import partition_dir

log = logging.getLogger("cprec.cache")

CACHE_DIR = ".cache"
CACHE_FILE = "cprec.duckdb"
STALE_MARKER = "STALE"
PENDING_MARKER = "PENDING"  # a collector is writing; holds its pid
BATCH_FILES = 4000


# Joins a table aliased {a} to the `touched` executions (t) on the execution key.
_SAME_EXECUTION = (
    "{a}.account_id = t.account_id AND {a}.region = t.region "
    "AND {a}.pipeline = t.pipeline AND {a}.execution_id = t.execution_id"
)


def cache_path(root: Path) -> Path:
    return Path(root) / CACHE_DIR / CACHE_FILE


def is_usable(root: Path) -> bool:
    """A cache exists, no writer marked it stale, and no writer died before refreshing it."""
    path = cache_path(root)
    if not path.exists() or (path.parent / STALE_MARKER).exists():
        return False
    return not _writer_died(path.parent / PENDING_MARKER)


def _writer_died(marker: Path) -> bool:
    try:
        pid = int(marker.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return marker.exists()  # an unreadable marker: assume the worst
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def begin_write(root: Path) -> bool:
    """Called by a collector under its lock, before writing: is the cache current?

    Current means every file written so far is in it, so it can stand in for the files
    (the collector reads its watermarks from it). The PENDING marker, removed by
    `end_write`, tells later readers if this writer dies before refreshing the cache.
    """
    path = cache_path(root)
    if not path.exists():
        return False
    current = is_usable(root) and not (path.parent / PENDING_MARKER).exists()
    (path.parent / PENDING_MARKER).write_text(f"{os.getpid()}\n")
    return current


def end_write(root: Path, written: Iterable[Path], *, current: bool) -> RefreshResult | None:
    """After a collector wrote `written`: refresh (the whole tree if it was not current).

    Raises what `refresh` raises, after marking the cache stale; the PENDING marker is
    removed either way (STALE carries the news).
    """
    path = cache_path(root)
    if not path.exists():
        return None
    try:
        return refresh(root, written=None if not current else written)
    except BaseException as e:
        mark_stale(root, f"refresh after a collector run failed: {e}")
        raise
    finally:
        (path.parent / PENDING_MARKER).unlink(missing_ok=True)


def mark_stale(root: Path, why: str) -> None:
    path = cache_path(root)
    if path.exists():
        (path.parent / STALE_MARKER).write_text(why + "\n")


@dataclass
class RefreshResult:
    files_loaded: int = 0
    files_gone: int = 0
    partitions_reloaded: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows after refresh
    seconds: float = 0.0


def _partition_of(table: Table, root: Path, path: Path) -> tuple[str | None, str]:
    rel = path.relative_to(root / table.name).parts
    if table.per_pipeline:
        return rel[0].removeprefix("pipeline="), rel[1].removeprefix("dt=")
    return None, rel[0].removeprefix("dt=")


def list_files(root: Path) -> dict[str, list[Path]]:
    """Every Parquet file of every table (the full walk `cprec cache` does)."""
    found: dict[str, list[Path]] = {}
    for name, table in TABLES.items():
        base = root / name
        files: list[Path] = []
        if base.is_dir():
            depth = 3 if table.per_pipeline else 2
            _walk(base, depth, files)
        found[name] = files
    return found


def _walk(directory: Path, depth: int, out: list[Path]) -> None:
    with os.scandir(directory) as it:
        for entry in it:
            if depth == 1:
                if entry.name.endswith(".parquet") and entry.is_file():
                    out.append(Path(entry.path))
            elif entry.is_dir() and "=" in entry.name:
                _walk(Path(entry.path), depth - 1, out)


class Cache:
    """A read-write handle on the cache file (one writer at a time; DuckDB locks the file)."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        path = cache_path(self.root)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(path))
        self.con.execute("SET TimeZone = 'UTC'")
        self._ensure_schema()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ensure_schema(self) -> None:
        con = self.con
        con.execute("CREATE SCHEMA IF NOT EXISTS cache")
        con.execute(
            "CREATE TABLE IF NOT EXISTS cache.files ("
            "path VARCHAR, tbl VARCHAR, pipeline VARCHAR, dt VARCHAR)"
        )
        for table in TABLES.values():
            cols = columns(table)
            con.execute(
                f"CREATE TABLE IF NOT EXISTS cache.{table.name} ("
                + ", ".join(f"{ident(n)} {t}" for n, t in cols)
                + ")"
            )
            have = {r[0] for r in con.execute(f"DESCRIBE cache.{table.name}").fetchall()}
            for n, t in cols:  # schemas only ever add columns
                if n not in have:
                    con.execute(f"ALTER TABLE cache.{table.name} ADD COLUMN {ident(n)} {t}")
        exists = con.execute(
            "SELECT count(*) FROM duckdb_tables() "
            "WHERE schema_name = 'cache' AND table_name = 'stage_runs'"
        ).fetchone()[0]
        if not exists:
            self._create_temp_source(None)
            con.execute(f"CREATE TABLE cache.stage_runs AS {sql_file('_stage_runs.sql')} LIMIT 0")

    # -- refresh ---------------------------------------------------------------------

    def refresh(
        self,
        written: Iterable[Path] | None = None,
        removed: Iterable[Path] = (),
    ) -> RefreshResult:
        """Bring the cache up to date. Without `written`, walk the whole tree."""
        started = time.monotonic()
        result = RefreshResult()
        written = None if written is None else [Path(p).resolve() for p in written]
        removed = [Path(p).resolve() for p in removed]
        if written is None:
            known = self._known_files()
            listing = list_files(self.root)
            on_disk = {str(p) for files in listing.values() for p in files}
            new = {
                name: [p for p in files if str(p) not in known] for name, files in listing.items()
            }
            gone = [p for p in known if p not in on_disk]
        else:
            # Only the named files are looked up: the cost follows the change, not the cache.
            known = self._known_files([str(p) for p in [*written, *removed]])
            new = defaultdict(list)
            for p in written:
                if str(p) not in known:
                    new[p.relative_to(self.root).parts[0]].append(p)
            gone = [str(p) for p in removed if str(p) in known]
        result.files_gone = len(gone)

        # Partitions that lost a file are reloaded whole from what is on disk now.
        reload: dict[str, set[tuple[str | None, str]]] = defaultdict(set)
        for path in gone:
            tbl, pipeline, dt = known[path]
            reload[tbl].add((pipeline, dt))
        self.con.execute("BEGIN TRANSACTION")
        try:
            self._forget(gone)
            affected_exec = False
            for name, parts in reload.items():
                table = TABLES[name]
                for pipeline, dt in parts:
                    self._delete_partition(table, pipeline, dt)
                    directory = partition_dir(self.root, name, pipeline, date.fromisoformat(dt))
                    current = sorted(directory.glob("*.parquet")) if directory.is_dir() else []
                    self._forget([str(p) for p in current])
                    new.setdefault(name, [])
                    new[name] = sorted(set(new[name]) | set(current))
                result.partitions_reloaded += len(parts)
                affected_exec |= name == "action_executions"
            self.con.execute(
                "CREATE OR REPLACE TEMP TABLE touched "
                "(account_id VARCHAR, region VARCHAR, pipeline VARCHAR, execution_id VARCHAR)"
            )
            for name, files in new.items():
                if files:
                    self._load(TABLES[name], files)
                    result.files_loaded += len(files)
            if affected_exec:
                # reloaded partitions may have lost executions entirely
                self.con.execute(
                    "DELETE FROM cache.stage_runs s WHERE NOT EXISTS (SELECT 1 FROM "
                    "cache.action_executions a WHERE a.account_id = s.account_id AND "
                    "a.region = s.region AND a.pipeline = s.pipeline AND "
                    "a.execution_id = s.execution_id)"
                )
            self._refresh_stage_runs()
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        stale = cache_path(self.root).parent / STALE_MARKER
        if written is None:
            stale.unlink(missing_ok=True)
        for name in TABLES:
            result.rows[name] = self.con.execute(f"SELECT count(*) FROM cache.{name}").fetchone()[0]
        result.seconds = time.monotonic() - started
        return result

    def _known_files(
        self, paths: list[str] | None = None
    ) -> dict[str, tuple[str, str | None, str]]:
        """Loaded files (all, or those of `paths`) -> (table, pipeline, dt)."""
        sql = "SELECT path, tbl, pipeline, dt FROM cache.files"
        if paths is None:
            rows = self.con.execute(sql).fetchall()
        else:
            rows = self.con.execute(f"{sql} SEMI JOIN (SELECT unnest($p) AS path) USING (path)",
                                    {"p": paths}).fetchall()  # fmt: skip
        return {p: (t, pl, dt) for p, t, pl, dt in rows}

    def _forget(self, paths: list[str]) -> None:
        if paths:
            self.con.execute(
                "DELETE FROM cache.files WHERE path IN (SELECT unnest($p))", {"p": paths}
            )

    def _delete_partition(self, table: Table, pipeline: str | None, dt: str) -> None:
        if table.per_pipeline:
            self.con.execute(
                f"DELETE FROM cache.{table.name} WHERE pipeline = ? AND dt = CAST(? AS DATE)",
                [pipeline, dt],
            )
        else:
            self.con.execute(f"DELETE FROM cache.{table.name} WHERE dt = CAST(? AS DATE)", [dt])

    def _load(self, table: Table, files: list[Path]) -> None:
        con = self.con
        on = " AND ".join(
            f"c.{ident(k)} IS NOT DISTINCT FROM s.{ident(k)}" for k in natural_key(table)
        )
        cols = ", ".join(ident(n) for n, _ in columns(table))
        empty = con.execute(f"SELECT count(*) = 0 FROM cache.{table.name}").fetchone()[0]
        for i in range(0, len(files), BATCH_FILES):
            batch = [str(p) for p in files[i : i + BATCH_FILES]]
            self._stage(
                f"CREATE OR REPLACE TEMP TABLE stage AS SELECT {cols} FROM ("
                f"{typed_empty_sql(table)} UNION ALL BY NAME {read_parquet_sql(table, '$files')}) "
                f"{latest_only_sql(table)}",
                {"files": batch},
            )
            if not empty:
                con.execute(
                    f"DELETE FROM cache.{table.name} c USING stage s WHERE {on} "
                    "AND (c.recorded_at IS NULL OR c.recorded_at <= s.recorded_at)"
                )
                con.execute(
                    f"INSERT INTO cache.{table.name} SELECT s.* FROM stage s "
                    f"ANTI JOIN cache.{table.name} c ON {on}"
                )
            else:
                con.execute(f"INSERT INTO cache.{table.name} SELECT * FROM stage")
                empty = False
            if table.name == "action_executions":
                con.execute(
                    "INSERT INTO touched "
                    "SELECT DISTINCT account_id, region, pipeline, execution_id FROM stage"
                )
            parts = [_partition_of(table, self.root, Path(p)) for p in batch]
            self._forget(batch)
            con.execute(
                "INSERT INTO cache.files SELECT unnest($p), $t, unnest($pl), unnest($dt)",
                {"p": batch, "t": table.name, "pl": [x[0] for x in parts],
                 "dt": [x[1] for x in parts]},
            )  # fmt: skip

    def _stage(self, sql: str, params: dict) -> None:
        try:
            self.con.execute(sql, params)
        except (duckdb.IOException, duckdb.InvalidInputException) as e:
            raise UserError(
                f"cannot cache: {first_line(e)}; move that file out and run again"
            ) from None

    def _create_temp_source(self, touched: bool | None) -> None:
        """`action_executions` as the stage_runs SQL sees it: only touched executions."""
        where = f"SEMI JOIN touched t ON {_SAME_EXECUTION.format(a='a')}" if touched else ""
        self.con.execute(
            "CREATE OR REPLACE TEMP VIEW action_executions AS "
            f"SELECT a.* FROM cache.action_executions a {where}"
        )
        self.con.execute(sql_file("_macros.sql"))

    def _refresh_stage_runs(self) -> None:
        con = self.con
        n = con.execute("SELECT count(*) FROM touched").fetchone()[0]
        if not n:
            return
        con.execute(
            f"DELETE FROM cache.stage_runs s USING touched t WHERE {_SAME_EXECUTION.format(a='s')}"
        )
        self._create_temp_source(True)
        con.execute(f"INSERT INTO cache.stage_runs {sql_file('_stage_runs.sql')}")


def refresh(
    root: Path, written: Iterable[Path] | None = None, removed: Iterable[Path] = ()
) -> RefreshResult:
    with Cache(root) as cache:
        return cache.refresh(written, removed)


def attach_views(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Create the table views, `stage_runs` and the macros in `con`, reading the cache."""
    path = cache_path(root)
    con.execute(f"ATTACH '{str(path.resolve())}' AS cpcache (READ_ONLY)")
    for name in [*TABLES, "stage_runs"]:
        con.execute(f"CREATE OR REPLACE VIEW main.{name} AS SELECT * FROM cpcache.cache.{name}")
    con.execute(sql_file("_macros.sql"))
