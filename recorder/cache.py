"""A local DuckDB cache of the Parquet tables, refreshed incrementally.

Why: at a year of a 500-pipeline organisation the daily partitions hold hundreds of
thousands of files, and every query over Parquet views lists, opens and
deduplicates all of them. The cache keeps each table deduplicated (the latest
recording per natural key) plus every derived relation materialised, so named queries
read columnar tables instead. The Parquet files stay the source of truth: the
cache can be deleted at any time and rebuilt with `cprec cache`.

File: <cache dir>/cprec.duckdb, the cache dir (recorder/root.py `DataRoot.cache_dir`)
being <root>/.cache for a local root, and for an S3 root a local directory under the
user's cache directory, one per root (`--cache-dir` chooses another). Inside, schema
`cache` holds one table per Parquet table, one table per relation the query layer
declares (queries/relations.py, maintained by recorder/derive.py's rules), `files` (every
Parquet file loaded), `parts` and `version`; schema `main` holds the views and macros a
reader queries (views.reader_sql over schema `cache`). `version` holds the one version
stamp (`version()`) readers check: a file of another version of cprec is not read (the
Parquet files answer) until a refresh by this version rebuilds what differs, which
`parts` says (the tables, each relation, the readers' views).

What makes it trustworthy:
- Every change, the first build included (its tables are created in it), is one
  DuckDB transaction that also writes `files` and `meta`. An interrupted build or
  refresh leaves the previous state, or a file without `meta`, which no reader uses.
- A rebuild (`cprec cache --rebuild`) builds a new file beside the cache and renames it
  over the cache only once committed: until then, and if it fails, readers use the old.
- Readers open it read-only (the whole DuckDB instance is read-only, so SQL run in
  it cannot attach the file again for writing).
- Whether it is behind the files is never guessed from a pid. A collector holds an
  flock on `.cache/WRITING` from before its first file until its refresh commits.
  A reader that finds WRITING held uses the cache as the last completed state; one
  that finds WRITING not held (its writer died) or a `.cache/STALE` note reads the
  Parquet files instead. A collector that finds a dead writer's WRITING writes
  STALE; only a refresh of the whole tree, under the collector's lock, removes it.

A refresh:
1. finds new files (not in `files`) and vanished ones (compacted or deleted);
2. reloads every partition that lost a file (its rows are deleted, then all its
   current files are loaded);
3. upserts new rows: a row replaces the cached one with the same key unless that one
   is the later recording (layout.supersedes_sql, the views' rule);
4. recomputes each relation for the keys of its grain that the changed rows touch
   (their executions, pipelines and pipeline names: `Cache._refresh_derived`).
Writers that know what they wrote (the collector, compaction) pass their file
lists, so no directory walk is needed; `cprec cache` walks the tree.

An S3 root is written by collectors elsewhere, so a reader cannot count on a writer
to refresh its cache: before each use it lists the objects and loads what is new
(`sync`, one paged listing, then only the new files), unless a collector on this
machine holds WRITING (it refreshes the cache when it ends).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from recorder import derive, layout
from recorder import head as head_mod
from recorder.errors import LockedError, UserError, WriteError, first_line
from recorder.lock import data_lock, held_by_someone, hold
from recorder.root import DataRoot
from recorder.schemas import TABLES, Table
from recorder.testhooks import checkpoint
from recorder.views import (
    MEMORY_LIMIT_ENV,
    check_files,
    checked_files,
    committed_sql,
    configure,
    create_cache_views,
    reader_sql,
)

log = logging.getLogger("cprec.cache")

CACHE_FILE = "cprec.duckdb"
STALE_MARKER = "STALE"
WRITING_MARKER = "WRITING"
NEW_SUFFIX = ".new"  # a rebuild's file, beside the cache file until it is renamed over it
# Bumped when the way the cache fills its tables changes beyond what the tables' digest
# sees (their columns and the rule that keeps the latest recording): part of the version.
LAYOUT = 6
KEEP = object()  # refresh(head=KEEP): the root head the cache records stays as it was
BATCH_FILES = 4000
LIST_CHUNK = 50_000  # paths of a tree walk handed to DuckDB at a time
# What a whole recompute of a relation takes at a time: at 500 pipelines x 365 days,
# stage_runs over 25 pipelines' executions (419k) does not fit in 256MB, 10 (168k) do, and
# deploy_attempts of 50 pipelines does not either
EXECUTION_CHUNK = 100_000  # executions
KEY_CHUNK = 10  # pipelines, or names


def cache_dir(root: str | Path | DataRoot) -> Path:
    """Where the cache of `root` lives: always on this machine (DataRoot.cache_dir)."""
    return DataRoot.of(root).cache_dir


def cache_path(root: str | Path | DataRoot) -> Path:
    return cache_dir(root) / CACHE_FILE


def _marker(root: DataRoot, name: str) -> Path:
    return root.cache_dir / name


def behind_reason(root: DataRoot) -> str | None:
    """Why the cache may be behind the files (None: it holds the last completed state)."""
    stale = _marker(root, STALE_MARKER)
    if stale.exists():
        return (stale.read_text(errors="replace").strip() or "marked stale").splitlines()[0]
    writing = _marker(root, WRITING_MARKER)
    if writing.exists() and not held_by_someone(writing):
        return "its last writer stopped before finishing (`cprec cache` repairs it)"
    return None


def mark_stale(root: str | Path | DataRoot, why: str) -> None:
    path = _marker(DataRoot.of(root), STALE_MARKER)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fh.write(why + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _unusable(root: DataRoot) -> str | None:
    """Why a reader cannot use the cache of `root` before opening it (None: it can try).
    For an S3 root the cache is first brought up to date with the objects (`sync`).

    That branch on the kind of root is the cache's policy, so it stays here: a directory
    root's collectors run on this machine and keep its cache current themselves, an S3
    root's run elsewhere (see the module's docstring)."""
    if root.is_s3:
        try:
            sync(root)
        except (duckdb.Error, UserError, OSError) as e:
            return f"cannot bring it up to date ({first_line(e)})"
    if not cache_path(root).exists():
        return "no cache"
    return behind_reason(root)


def open_reader(
    root: str | Path | DataRoot,
) -> tuple[duckdb.DuckDBPyConnection | None, str | None]:
    """A read-only connection whose views read the cache, or (None, why not).
    For an S3 root the cache is first brought up to date with the objects (`sync`)."""
    root = DataRoot.of(root)
    why = _unusable(root)
    if why:
        return None, why
    try:
        con = duckdb.connect(str(cache_path(root).resolve()), read_only=True)
    except duckdb.Error as e:
        return None, f"cannot open it ({first_line(e)})"
    try:
        configure(con)
        why = _not_current(con, root=root)
        if why:
            con.close()
            return None, why
    except BaseException:
        con.close()
        raise
    return con, None


def attach_current(con: duckdb.DuckDBPyConnection, root: DataRoot, alias: str) -> str | None:
    """Attach the cache of `root` read-only to `con` as `alias`, with its views (temporary,
    named like the tables), when a reader would use it (`open_reader`'s rules); else
    attach nothing and return why not."""
    why = _unusable(root)
    if why:
        return why
    path = cache_path(root).resolve()
    try:
        con.execute(f"ATTACH {layout.sql_string(str(path))} AS {alias} (READ_ONLY)")
    except duckdb.Error as e:
        return f"cannot open it ({first_line(e)})"
    why = _not_current(con, alias, root=root)
    if why:
        con.execute(f"DETACH {alias}")
        return why
    create_cache_views(con, alias, derive.default_catalog())
    return None


def _not_current(
    con: duckdb.DuckDBPyConnection, db: str | None = None, *, root: DataRoot
) -> str | None:
    """Why this version's readers cannot use the cache open in `con` (as database `db`,
    default the connection's own), or None: a build never completed, another version of
    cprec wrote it (its version stamp differs: until a refresh by this version rebuilds
    what differs, the Parquet files answer), or it is not a whole state of `root`."""
    stamp = _stamp(con, db)
    if stamp is None:
        return "never completed a build (run `cprec cache`)"
    if stamp != version():
        return "another version of cprec wrote it (run `cprec cache`)"
    return _not_of_root(con, db, root)


def _not_of_root(con: duckdb.DuckDBPyConnection, db: str | None, root: DataRoot) -> str | None:
    """Why the cache of a directory root does not hold a whole state of it (None: it
    does), by the root's head (recorder/head.py). A root without a head (none of this
    version's collectors has run) is left to the WRITING and STALE markers. An S3 root's
    cache was just brought level with the objects (`sync`: `_unusable`'s policy)."""
    if root.is_s3:
        return None
    try:
        found = head_mod.read(root)
    except UserError as e:
        return first_line(e)
    if found is None:
        return None
    if not found.reflected_by(_recorded_head(con, db)):
        return "it does not hold the root's last state (another root's, or an older copy)"
    return None


def _recorded_head(con: duckdb.DuckDBPyConnection, db: str | None = None) -> str | None:
    """The root head (recorder/head.py `Head.token`) the cache open in `con` records."""
    if not _has_table(con, "version", db):
        return None
    row = con.execute(f"SELECT root FROM {_schema(db)}.version").fetchall()
    return row[0][0] if row else None


def _cache_head(root: DataRoot) -> str | None:
    """The root head a completed cache file of `root` records; None when there is no
    such file or it records none."""
    if not cache_path(root).exists():
        return None
    try:
        con = duckdb.connect(str(cache_path(root)), read_only=True)
    except duckdb.Error:
        return None
    try:
        return _recorded_head(con) if _stamp(con) == version() else None
    finally:
        con.close()


def _catalog(con: duckdb.DuckDBPyConnection) -> str:
    return layout.ident(con.execute("SELECT current_database()").fetchone()[0])


def _stamp(con: duckdb.DuckDBPyConnection, db: str | None = None) -> str | None:
    """The version stamp of the cache open in `con` (as database `db`), None if no build
    completed (a lookup, not a failing query: a failed statement would abort the
    refresh's transaction)."""
    if not _has_table(con, "version", db):
        return None
    # fetchall: a result left unfinished would refuse the caller's next query
    row = con.execute(f"SELECT stamp FROM {_schema(db)}.version").fetchall()
    return row[0][0] if row else None


def _parts(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """What the cache file holds, part by part (`parts`), as its last refresh wrote it."""
    if not _has_table(con, "parts"):
        return {}
    return dict(con.execute("SELECT part, digest FROM cache.parts").fetchall())


def _schema(db: str | None) -> str:
    return "cache" if db is None else f"{db}.cache"


def _has_table(con: duckdb.DuckDBPyConnection, name: str, db: str | None = None) -> bool:
    where = "current_database()" if db is None else layout.sql_string(db)
    return (
        con.execute(
            f"SELECT count(*) FROM duckdb_tables() WHERE database_name = {where} "
            "AND schema_name = 'cache' AND table_name = $n",
            {"n": name},
        ).fetchall()[0][0]
        > 0
    )


# -- writers ------------------------------------------------------------------------


class Writing:
    """A writer's claim on the cache: a collector's from before its first file to its
    refresh (`run_id`), or `cprec cache`'s (no run id: it writes no data).

    Call under the collector's data lock. A collector marks the root's head dirty with
    its run id (recorder/head.py) before anything else. `current`: the cache has proven
    that it reflects this root as it is (it records the head the collector found, and
    that head is clean), so it can stand in for the files (the collector's cursor) and
    be refreshed with just what the run writes. Anything else (another root's cache,
    one of an earlier life of the bucket, an older copy, a crashed run) is not current:
    the cursor is read from the files and the refresh walks the whole tree.
    """

    def __init__(self, root: str | Path | DataRoot, run_id: str | None = None):
        self.root = root = DataRoot.of(root)
        writing = _marker(root, WRITING_MARKER)
        if run_id is None:  # `cprec cache`: the head stays as found; it walks the whole
            found, self.head = None, head_mod.proven(self.root)  # tree, so never `current`
        else:
            found, ended = head_mod.begin(self.root, run_id)
            self.head = ended.token
        try:
            if writing.exists():  # we hold the data lock, so its writer is dead
                mark_stale(root, "a collector stopped before refreshing the cache")
            self.current = (
                found is not None
                and found.clean
                and behind_reason(root) is None
                and _cache_head(root) == found.token
            )
            writing.parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = hold(writing)
        except OSError as e:
            raise UserError(f"cannot write the cache in {writing.parent}: {e.strerror}") from None

    def finish(
        self, written: Iterable[Path] | None, *, build: bool = False
    ) -> RefreshResult | None:
        """Refresh the cache with `written` (the whole tree if None or it was not current),
        recording the head it then reflects.

        No cache is built unless `build`. On failure the cache is marked stale and the
        error raised; the claim is released either way.
        """
        try:
            if not build and not cache_path(self.root).exists():
                return None
            try:
                return refresh(self.root, written=written if self.current else None, head=self.head)
            except BaseException as e:
                mark_stale(self.root, f"refresh after a collector run failed: {first_line(e)}")
                raise
        finally:
            self.release()

    def release(self) -> None:
        if self._fd is not None:
            _marker(self.root, WRITING_MARKER).unlink(missing_ok=True)
            self.abandon()

    def abandon(self) -> None:
        """Let go without saying the cache is current: WRITING stays, unheld, as after
        a crash, so readers read the files and the next collector refreshes all."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextmanager
def writing(root: str | Path | DataRoot, run_id: str | None = None) -> Iterator[Writing]:
    """Claim the cache for a collector run; `finish` it, or it is abandoned on the way out."""
    claim = Writing(root, run_id)
    try:
        yield claim
    finally:
        claim.abandon()


@dataclass
class RefreshResult:
    files_loaded: int = 0
    files_gone: int = 0
    partitions_reloaded: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows after refresh
    seconds: float = 0.0


class Cache:
    """A read-write handle on the cache file (one writer at a time; DuckDB locks the file)."""

    def __init__(self, root: str | Path | DataRoot, path: Path | None = None):
        """`path`: the file to write (default the cache file; a rebuild writes another)."""
        self.root = DataRoot.of(root).resolve()
        self.path = path = path or cache_path(self.root)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(str(path))
            self.root.attach(self.con)
        except OSError as e:
            raise UserError(f"cannot write the cache {path}: {e.strerror}") from None
        except duckdb.IOException as e:
            if "lock" in str(e).lower():
                raise LockedError(
                    f"the cache {path} is in use by another process; "
                    "queries read the Parquet files until it is refreshed"
                ) from None
            raise UserError(f"cannot open the cache {path}: {first_line(e)}") from None
        except duckdb.Error as e:
            raise UserError(
                f"cannot open the cache {path}: {first_line(e)} (delete it, or run "
                "`cprec cache --rebuild`)"
            ) from None
        # UTC, no progress bar in a collector's log, the memory limit; it spills beside
        # the file (DuckDB removes what it spilled when the connection closes)
        spill = path.with_name(path.name + ".spill")
        shutil.rmtree(spill, ignore_errors=True)  # a killed writer's (DuckDB's lock is ours)
        configure(self.con, spill=spill)
        self.catalog = derive.default_catalog()
        self.parts = parts()
        self.whole: set[str] = set()  # relations recomputed whole (set by _ensure_schema)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ensure_schema(self) -> None:
        """Create the tables, or keep what this version would have written and drop the
        rest; runs inside the refresh's transaction. The file's parts (`parts`) say what
        differs: other tables (columns, or the rule that fills them) and every table is
        loaded again; another relation's SQL (or that of one it reads) and that relation
        is recomputed whole."""
        con = self.con
        held = _parts(con)
        if held.get("tables") != self.parts["tables"]:
            con.execute("DROP SCHEMA IF EXISTS cache CASCADE")
            held = {}
        con.execute("CREATE SCHEMA IF NOT EXISTS cache")
        con.execute(
            "CREATE TABLE IF NOT EXISTS cache.files ("
            "path VARCHAR, tbl VARCHAR, pipeline VARCHAR, dt VARCHAR)"
        )
        con.execute(
            "CREATE TABLE IF NOT EXISTS cache.version "
            "(stamp VARCHAR, refreshed_at TIMESTAMPTZ, files BIGINT, root VARCHAR)"
        )
        con.execute("CREATE TABLE IF NOT EXISTS cache.parts (part VARCHAR, digest VARCHAR)")
        for table in TABLES.values():
            con.execute(
                f"CREATE TABLE IF NOT EXISTS cache.{table.name} ("
                + ", ".join(f"{layout.ident(n)} {t}" for n, t in layout.columns(table))
                + ")"
            )
        self.whole = {n for n in self.catalog.names if held.get(n) != self.parts[n]}
        for name in self.catalog.names:
            if name in self.whole and _has_table(con, name):
                con.execute(f"DROP TABLE cache.{name}")

    def _create(self, rel: derive.Relation) -> None:
        """Create the table of `rel` (after the tables and relations it reads)."""
        # Columns spelled out, not `CREATE TABLE AS ... LIMIT 0`: DuckDB 2.0.0 keeps the
        # empty result's statistics for a table created that way, and scans of rows
        # inserted later in the same transaction come back empty (each relation is read
        # by the next ones in the refresh's transaction).
        cols = self.con.execute(f"DESCRIBE {self._compute(rel, keys=None)}").fetchall()
        self.con.execute(
            f"CREATE TABLE cache.{rel.name} ("
            + ", ".join(f"{layout.ident(c[0])} {c[1]}" for c in cols)
            + ")"
        )

    def _compute(
        self, rel: derive.Relation, *, keys: str | None, horizon: str | None = None
    ) -> str:
        return derive.compute_sql(
            self.con, rel, "cache", self._table_source, keys=keys, horizon=horizon
        )

    @staticmethod
    def _table_source(name: str) -> str:
        return _committed_source(TABLES[name], "cache")

    def _store_reader_sql(self) -> None:
        """Store the readers' views and macros in the file (schema main), over its own
        tables: a reader of this version opens the file and queries, instead of binding
        ~50 ms of macros per connection. Only when the file holds another version's (a
        first build, or the first refresh by another version), in the refresh's
        transaction; what the file held before is dropped, so no object of another
        version is left."""
        con = self.con
        if _parts(con).get("reader") == self.parts["reader"]:
            return
        old = con.execute(
            "SELECT 'VIEW', view_name FROM duckdb_views() "
            "WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal "
            "UNION ALL SELECT DISTINCT CASE function_type WHEN 'table_macro' THEN 'MACRO TABLE' "
            "ELSE 'MACRO' END, function_name FROM duckdb_functions() "
            "WHERE database_name = current_database() AND schema_name = 'main' "
            "AND function_type IN ('macro', 'table_macro') AND NOT internal"
        ).fetchall()
        for kind, name in old:
            con.execute(f"DROP {kind} IF EXISTS main.{layout.ident(name)}")
        for sql in reader_sql("cache", self.catalog, temp=False):
            con.execute(sql)

    # -- refresh ---------------------------------------------------------------------

    def refresh(
        self,
        written: Iterable[Path] | None = None,
        removed: Iterable[Path] = (),
        head: str | None | object = KEEP,
    ) -> RefreshResult:
        """Bring the cache up to date in one transaction. Without `written`, walk the tree.
        `head`: the root head (recorder/head.py) the cache reflects afterwards, recorded
        in the same transaction (None: none it can prove; KEEP: as it was, for a change
        that alters no row, compaction)."""
        started = time.monotonic()
        result = RefreshResult()
        self.con.execute("BEGIN TRANSACTION")
        try:
            if written is not None and _stamp(self.con) != version():
                # Adding a few files to a cache this version never completed a build of
                # would make it look complete.
                raise UserError(f"the cache {self.path} was never built whole by this version")
            recorded = None if head is None else _recorded_head(self.con) if head is KEEP else head
            self._ensure_schema()
            checkpoint("cache-step")
            self._refresh(result, written, removed)
            checkpoint("cache-step")
            self._store_reader_sql()
            self.con.execute("DELETE FROM cache.parts")
            self.con.execute(
                "INSERT INTO cache.parts SELECT unnest($p), unnest($d)",
                {"p": list(self.parts), "d": list(self.parts.values())},
            )
            self.con.execute("DELETE FROM cache.version")
            self.con.execute(
                "INSERT INTO cache.version SELECT $v, now(), count(*), $r FROM cache.files",
                {"v": version(), "r": recorded},
            )
            checkpoint("cache-step")
            self.con.execute("COMMIT")
            checkpoint("cache-step")
        except BaseException:
            try:
                self.con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # the connection is gone: nothing of the transaction was committed
            raise
        for name in TABLES:
            result.rows[name] = self.con.execute(f"SELECT count(*) FROM cache.{name}").fetchone()[0]
        result.seconds = time.monotonic() - started
        return result

    def _refresh(self, result: RefreshResult, written, removed) -> None:
        """Find what changed, reload what lost a file, load what is new, then derive.

        The file lists live in DuckDB (`cprec_listing`, `cprec_new`), not in Python: at
        500 pipelines x 365 days a tree holds 1.2 million files, and lists and sets of
        their paths took over 1 GB of the process's memory."""
        con = self.con
        con.execute(
            "CREATE OR REPLACE TEMP TABLE cprec_new "
            "(path VARCHAR, tbl VARCHAR, pipeline VARCHAR, dt VARCHAR)"
        )
        if written is None:
            self._list_tree()
            known = con.execute("SELECT count(*) FROM cache.files").fetchone()[0]
            gone_sql = "FROM cache.files ANTI JOIN cprec_listing USING (path)"
            n_gone = con.execute(f"SELECT count(*) {gone_sql}").fetchone()[0]
            if known and n_gone == known:
                # Nothing loaded is where it was (the root moved, or every file was
                # compacted): the tables are emptied and the tree loaded as by a first
                # build, not reloaded partition by partition into full tables (at
                # 10×365: ~16 s instead of ~7 min, same rows).
                for name in [*TABLES, "files"]:
                    con.execute(f"DELETE FROM cache.{name}")
                result.files_gone = n_gone
                gone = []
            else:
                gone = con.execute(f"SELECT path, tbl, pipeline, dt {gone_sql}").fetchall()
        else:
            # Only the named files are looked up: the cost follows the change, not the cache.
            written = [self.root.file(p).resolve() for p in written]
            removed = [self.root.file(p).resolve() for p in removed]
            known = self._known_files([str(p) for p in [*written, *removed]])
            by_table = defaultdict(list)
            for p in written:
                if str(p) not in known:
                    by_table[layout.table_of(self.root, p)].append(str(p))
            for name, paths in by_table.items():
                self._add_new(name, paths)
            gone = [(str(p), *known[str(p)]) for p in removed if str(p) in known]
        result.files_gone += len(gone)

        # Partitions that lost a file are reloaded whole from what is on disk now.
        reload: dict[str, set[tuple[str | None, str]]] = defaultdict(set)
        for _, tbl, pipeline, dt in gone:
            reload[tbl].add((pipeline, dt))
        self._forget([g[0] for g in gone])
        for grain in ("execution", "pipeline"):
            cols = ", ".join(f"{c} VARCHAR" for c in derive.GRAINS[grain])
            con.execute(f"CREATE OR REPLACE TEMP TABLE touched_{grain} ({cols})")
        # A first build derives every row at the end, from whole tables.
        if not con.execute("SELECT count(*) FROM cache.files").fetchone()[0]:
            self.whole = set(self.catalog.names)
        for name, parts in reload.items():
            table = TABLES[name]
            for pipeline, dt in parts:
                params = [pipeline, dt] if table.per_pipeline else [dt]
                self._touch(table, f"cache.{name}", self._partition_filter(table), params)
                self._delete_partition(table, pipeline, dt)
                directory = layout.partition_dir(self.root, name, pipeline, date.fromisoformat(dt))
                current = [str(p) for p in layout.partition_files(self.root, directory)]
                self._forget(current)
                if written is not None:  # (a tree's listing holds them already)
                    self._add_new(name, current)
            result.partitions_reloaded += len(parts)
        if written is None:  # every listed file not loaded, the reloaded partitions' too
            con.execute(
                "INSERT INTO cprec_new SELECT * FROM cprec_listing ANTI JOIN cache.files "
                "USING (path)"
            )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE cprec_new AS SELECT DISTINCT ON (path) *, "
            "row_number() OVER (PARTITION BY tbl ORDER BY dt, pipeline, path) AS n "
            "FROM cprec_new"
        )
        for name, count in con.execute(
            "SELECT tbl, count(*) FROM cprec_new GROUP BY tbl ORDER BY tbl"
        ).fetchall():
            self._load(TABLES[name], self._new_batches(name, count))
            result.files_loaded += count
        self._refresh_derived()

    def _list_tree(self) -> None:
        """Every data file of the root into the temporary table `cprec_listing`, a walk
        streamed in chunks (layout.iter_files)."""
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE cprec_listing "
            "(path VARCHAR, tbl VARCHAR, pipeline VARCHAR, dt VARCHAR)"
        )
        for name in TABLES:
            chunk: list[str] = []
            for path in layout.iter_files(self.root, name):
                chunk.append(str(path))
                if len(chunk) == LIST_CHUNK:
                    self._insert_paths("cprec_listing", name, chunk)
                    chunk = []
            self._insert_paths("cprec_listing", name, chunk)

    def _add_new(self, name: str, paths: list[str]) -> None:
        self._insert_paths("cprec_new", name, paths)

    def _insert_paths(self, relation: str, name: str, paths: list[str]) -> None:
        if not paths:
            return
        parts = layout.partitions_of(self.root, name, paths)
        self.con.execute(
            f"INSERT INTO {relation} SELECT unnest($p), $t, unnest($pl), unnest($dt)",
            {"p": paths, "t": name, "pl": [x[0] for x in parts], "dt": [x[1] for x in parts]},
        )

    def _new_batches(self, name: str, count: int) -> Iterator[list[str]]:
        """The new files of table `name`, BATCH_FILES at a time, by (dt, pipeline): each
        batch fetched whole before it is loaded (a result left open would be dropped by
        the next statement)."""
        for first in range(1, count + 1, BATCH_FILES):
            rows = self.con.execute(
                "SELECT path FROM cprec_new WHERE tbl = $t AND n BETWEEN $a AND $b ORDER BY n",
                {"t": name, "a": first, "b": first + BATCH_FILES - 1},
            ).fetchall()
            yield [r[0] for r in rows]

    def _known_files(self, paths: list[str]) -> dict[str, tuple[str, str | None, str]]:
        """Loaded files among `paths` -> (table, pipeline, dt)."""
        rows = self.con.execute(
            "SELECT path, tbl, pipeline, dt FROM cache.files "
            "SEMI JOIN (SELECT unnest($p) AS path) USING (path)",
            {"p": paths},
        ).fetchall()
        return {p: (t, pl, dt) for p, t, pl, dt in rows}

    def _forget(self, paths: list[str]) -> None:
        if paths:
            self.con.execute(
                "DELETE FROM cache.files WHERE path IN (SELECT unnest($p))", {"p": paths}
            )

    @staticmethod
    def _partition_filter(table: Table) -> str:
        if table.per_pipeline:
            return "WHERE pipeline = ? AND dt = CAST(? AS DATE)"
        return "WHERE dt = CAST(? AS DATE)"

    def _delete_partition(self, table: Table, pipeline: str | None, dt: str) -> None:
        params = [pipeline, dt] if table.per_pipeline else [dt]
        self.con.execute(f"DELETE FROM cache.{table.name} {self._partition_filter(table)}", params)

    def _touch(self, table: Table, relation: str, where: str = "", params=None) -> None:
        """Note the keys of `relation`'s rows (rows of `table` being loaded or deleted)
        whose relations must be recomputed: their executions, or for a table without
        one, their pipelines. Only for a table some relation reads."""
        if table.name not in self.catalog.read_tables or len(self.whole) == len(self.catalog.names):
            return
        grain = "execution" if "execution_id" in table.schema.names else "pipeline"
        cols = ", ".join(derive.GRAINS[grain])
        self.con.execute(
            f"INSERT INTO touched_{grain} SELECT DISTINCT {cols} FROM {relation} {where}", params
        )

    def _load(self, table: Table, batches: Iterable[list[str]]) -> None:
        """Load the files of `batches` (lists of paths, in the order to store them)."""
        con = self.con
        if con.execute(f"SELECT count(*) = 0 FROM cache.{table.name}").fetchone()[0]:
            self._load_into_empty(table, batches)
            return
        on = " AND ".join(
            f"c.{layout.ident(k)} IS NOT DISTINCT FROM s.{layout.ident(k)}"
            for k in layout.natural_key(table)
        )
        cols = ", ".join(layout.ident(n) for n, _ in layout.columns(table))
        for batch in batches:
            checkpoint("cache-load")
            check_files(con, table, "$files", {"files": batch})
            self._stage(
                f"CREATE OR REPLACE TEMP TABLE stage AS SELECT {cols} FROM ("
                f"{layout.read_parquet_sql(table, '$files')}) {layout.latest_only_sql(table)}",
                {"files": batch},
            )
            # the staged recording replaces the cached one unless that one wins (a tie:
            # the staged), by the rule the views deduplicate with
            con.execute(
                f"DELETE FROM cache.{table.name} c USING stage s WHERE {on} "
                f"AND NOT {layout.supersedes_sql('c', 's')}"
            )
            con.execute(
                f"INSERT INTO cache.{table.name} SELECT s.* FROM stage s "
                f"ANTI JOIN cache.{table.name} c ON {on}"
            )
            self._touch(table, "stage")
            self._add_files(table, batch)

    def _load_into_empty(self, table: Table, batches: Iterable[list[str]]) -> None:
        """Load a table that holds no row (a first build): each batch is appended as
        read, then the rows a later recording supersedes are deleted once, by a window
        over the key columns. Same rows as `_load`, without its per-batch staging copy,
        wide window and joins against the growing table (most of a first build's time).
        The batches come in (dt, pipeline) order, so a table's rows are stored roughly by
        day."""
        con = self.con
        relation = f"cache.{table.name}"
        cols = ", ".join(layout.ident(n) for n, _ in layout.columns(table))
        # Row order follows the file order only loosely (threads append as they read);
        # keeping it exact costs a third of the load, and no reader depends on it.
        con.execute("SET preserve_insertion_order = false")
        try:
            for batch in batches:
                checkpoint("cache-load")
                complete = self._check(table, batch)
                whole = [f for f in batch if f in complete]
                rest = [f for f in batch if f not in complete]
                for group, by_name in ((whole, False), (rest, True)):
                    if group:
                        read = layout.read_parquet_sql(table, "$files", union_by_name=by_name)
                        self._stage(
                            f"INSERT INTO {relation} BY NAME SELECT {cols} FROM ({read})",
                            {"files": group},
                        )
                self._add_files(table, batch)
        finally:
            try:
                con.execute("RESET preserve_insertion_order")
            except duckdb.Error:
                pass  # an aborted transaction: its error is on its way up
        con.execute(
            f"DELETE FROM {relation} WHERE rowid IN ({layout.superseded_sql(table, relation)})"
        )
        self._touch(table, relation)

    def _check(self, table: Table, batch: list[str]) -> set[str]:
        """check_files for `batch`, reading each footer once; returns the files that
        hold exactly the table's columns (the others need union_by_name)."""
        return checked_files(self.con, table, "$files", {"files": batch})[0]

    def _add_files(self, table: Table, batch: list[str]) -> None:
        """List `batch` (loaded files of `table`) in `files`, once each."""
        parts = layout.partitions_of(self.root, table.name, batch)
        self._forget(batch)
        self.con.execute(
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

    def _key_chunks(self, rel: derive.Relation) -> Iterator[None]:
        """Fill the temporary table `cprec_chunk` with a chunk of the keys of `rel`'s grain
        (every key its inputs hold) at a time, once per chunk: EXECUTION_CHUNK executions,
        or KEY_CHUNK pipelines or names."""
        con = self.con
        cols = ", ".join(rel.key)
        size = EXECUTION_CHUNK if rel.grain == "execution" else KEY_CHUNK
        every = " UNION ".join(f"SELECT DISTINCT {cols} FROM cache.{n}" for n in rel.reads)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE cprec_all_keys AS SELECT *, "
            f"row_number() OVER (ORDER BY {cols}) AS n FROM ({every})"
        )
        total = con.execute("SELECT count(*) FROM cprec_all_keys").fetchone()[0]
        for first in range(1, total + 1, size):
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE cprec_chunk AS SELECT {cols} FROM cprec_all_keys "
                "WHERE n BETWEEN $a AND $b",
                {"a": first, "b": first + size - 1},
            )
            yield

    def _refresh_derived(self) -> None:
        """Recompute each relation, in the catalog's order (each reads the rows the ones
        before it just wrote): whole when `whole` names it (a first build, another
        version's SQL), else for just the keys of its grain that this refresh touched,
        which are said explicitly: the touched executions; their pipelines and those of
        the touched pipeline rows; the names of those pipelines."""
        con = self.con
        con.execute(derive.status_macros(temp=True))  # what the SQL calls
        con.execute(derive.macro_sql(self.catalog.macros, temp=True))
        keys = {
            "execution": "SELECT DISTINCT * FROM touched_execution",
            "pipeline": "SELECT DISTINCT account_id, region, pipeline FROM touched_execution "
            "UNION SELECT * FROM touched_pipeline",
            "name": f"SELECT DISTINCT pipeline FROM {derive.keys_table('pipeline')}",
        }
        for grain, sql in keys.items():
            con.execute(f"CREATE OR REPLACE TEMP TABLE {derive.keys_table(grain)} AS {sql}")
        counts = {
            g: con.execute(f"SELECT count(*) FROM {derive.keys_table(g)}").fetchone()[0]
            for g in keys
        }
        for rel in self.catalog.relations:
            if rel.name in self.whole:
                if not _has_table(con, rel.name):
                    self._create(rel)
                con.execute(f"DELETE FROM cache.{rel.name}")
                # a chunk of pipelines (or names) at a time: a percentile holds every
                # value of its group in memory, and at 500 x 365 neither a whole relation's
                # groups nor stage_runs' windows over all 24.5M action rows fit under the
                # memory limit (DuckDB spills some of its operators, not all of them)
                for _ in self._key_chunks(rel):
                    con.execute(
                        f"INSERT INTO cache.{rel.name} {self._compute(rel, keys='cprec_chunk')}"
                    )
            elif counts[rel.grain]:
                keys = derive.keys_table(rel.grain)
                whole = keys
                if rel.horizon:
                    # the pipelines its horizon bounds lose (and get back) only their rows
                    # from `since` on; the others are recomputed whole
                    con.execute(
                        "CREATE OR REPLACE TEMP TABLE cprec_horizon AS "
                        + derive.horizon_sql(rel, "cache", self._table_source,
                                             keys=derive.keys_table("execution"),
                                             whole="touched_pipeline")
                    )  # fmt: skip
                    con.execute(derive.horizon_delete(rel, "cache", "cprec_horizon"))
                    con.execute(
                        f"CREATE OR REPLACE TEMP TABLE cprec_unbounded AS SELECT * FROM {keys} "
                        "ANTI JOIN cprec_horizon USING (account_id, region, pipeline)"
                    )
                    whole = "cprec_unbounded"
                on = " AND ".join(f"x.{c} = k.{c}" for c in rel.key)
                con.execute(f"DELETE FROM cache.{rel.name} x USING {whole} k WHERE {on}")
                horizon = "cprec_horizon" if rel.horizon else None
                compute = self._compute(rel, keys=keys, horizon=horizon)
                if rel.grain == "execution":
                    # kept for the horizons, which read a touched execution's new rows
                    # here rather than by scanning the whole relation for them
                    new = derive.new_rows_table(rel.name)
                    con.execute(f"CREATE OR REPLACE TEMP TABLE {new} AS {compute}")
                    compute = f"SELECT * FROM {new}"
                con.execute(f"INSERT INTO cache.{rel.name} {compute}")
            elif rel.grain == "execution":
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {derive.new_rows_table(rel.name)} AS "
                    f"SELECT * FROM cache.{rel.name} LIMIT 0"
                )


def _committed_source(table: Table, schema: str) -> str:
    """The rows of `table` in the cache's `schema` as a reader's view gives them."""
    return f"({committed_sql(table, f'SELECT * FROM {schema}.{table.name}', schema)})"


def tables_digest() -> str:
    """What identifies the cache's tables: their columns, the rule that keeps the
    latest recording of a key, and LAYOUT."""
    return derive.digest(
        LAYOUT,
        layout.supersedes_sql("c", "s"),
        [(t.name, layout.columns(t), layout.latest_only_sql(t)) for t in TABLES.values()],
    )


@functools.cache
def parts() -> dict[str, str]:
    """What a cache file of this version holds, part by part: its tables, each relation
    (recorder/derive.py: its SQL and what it reads) and the readers' views and macros
    (with the DuckDB version, which binds them). A refresh rebuilds the parts that
    differ from the file's."""
    catalog = derive.default_catalog()
    tables = tables_digest()
    readers = derive.digest(reader_sql("cache", catalog, temp=False), duckdb.__version__)
    return {"tables": tables, **catalog.digests(tables), "reader": readers}


@functools.cache
def version() -> str:
    """The one version stamp of what a cache file holds: readers use a file only when
    its stamp is this one."""
    return derive.digest(sorted(parts().items()))


def build(root: str | Path | DataRoot, *, rebuild: bool = False) -> RefreshResult:
    """`cprec cache`: bring the cache up to date with the whole tree (create it if missing).

    Takes the collector's lock, so it never runs beside a collector (which refreshes
    the cache itself when it ends). For an S3 root, whose collectors run elsewhere,
    the lock of the local cache directory instead (DataRoot.cache_lock).
    """
    root = DataRoot.of(root)
    with root.cache_lock():
        with writing(root) as claim:
            if rebuild:
                return _rebuild(root, claim)
            return claim.finish(None, build=True)


def _rebuild(root: DataRoot, claim: Writing) -> RefreshResult:
    """Build the cache from scratch in a file beside it, then rename that over it.

    Until the rename the old file is not written: readers keep using it (the claim says a
    writer is at work), and a build that fails leaves it exactly as it was, so the claim
    is released, not abandoned (which would send readers to the Parquet files).
    """
    path = cache_path(root)
    new = path.with_name(path.name + NEW_SUFFIX)
    try:
        try:
            _remove_database(new)  # left by a rebuild that was killed
            result = _refresh_file(root, new, checkpointed=True, head=claim.head)
            # Only the file is renamed: a WAL beside it would hold committed rows the
            # renamed file lacks.
            if _wal(new).exists():
                raise WriteError(f"the cache {new} kept a write-ahead log after its checkpoint")
            # A WAL beside the old file is that file's (its writer crashed), and DuckDB
            # refuses to open the new file beside it. Until the rename a reader finds the
            # old file as of its last checkpoint, a state it held before.
            _wal(path).unlink(missing_ok=True)
            os.replace(new, path)
        except BaseException:
            _remove_database(new)
            raise
        _marker(root, STALE_MARKER).unlink(missing_ok=True)
        return result
    except OSError as e:
        raise WriteError(f"cannot rebuild the cache {path}: {e.strerror}") from None
    finally:
        claim.release()


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _remove_database(path: Path) -> None:
    for p in (path, _wal(path)):
        p.unlink(missing_ok=True)


def sync(root: DataRoot) -> None:
    """Bring the cache of an S3 root up to date with its objects, building it if missing.

    Skipped while a collector on this machine holds WRITING (its refresh follows).
    Concurrent readers take turns on the cache directory's lock (the second finds
    nothing new); the listing and the load are one refresh transaction.
    """
    if held_by_someone(_marker(root, WRITING_MARKER)):
        return
    directory = root.cache_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot write the cache in {directory}: {e.strerror}") from None
    deadline = time.monotonic() + 600
    while True:
        try:
            with data_lock(directory, holder="cache refresh"):
                refresh(root)
                return
        except LockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def refresh(
    root: str | Path | DataRoot,
    written: Iterable[Path] | None = None,
    removed: Iterable[Path] = (),
    *,
    head: str | None | object = KEEP,
) -> RefreshResult:
    """Refresh the cache; without `written` (a whole-tree walk) it is current afterwards.
    `head`: see Cache.refresh; a whole-tree walk by default records the root's head read
    before it lists the files, if that head is clean (a collector elsewhere that began
    meanwhile has another run id, so the cache then proves nothing).

    A whole-tree refresh clears STALE: call it only under the collector's lock.
    """
    root = DataRoot.of(root)
    if written is None and head is KEEP:
        head = head_mod.proven(root)
    result = _refresh_file(root, cache_path(root), written, removed, head=head)
    checkpoint("cache-step")
    if written is None:
        _marker(root, STALE_MARKER).unlink(missing_ok=True)
    return result


def _refresh_file(
    root: DataRoot,
    path: Path,
    written: Iterable[Path] | None = None,
    removed: Iterable[Path] = (),
    *,
    checkpointed: bool = False,
    head: str | None | object = KEEP,
) -> RefreshResult:
    """Refresh the cache file `path` of `root`; `checkpointed`: write every committed
    change into the file itself before closing it (no WAL left beside it). `head`: see
    Cache.refresh."""
    try:
        with Cache(root, path) as cache:
            result = cache.refresh(written, removed, head)
            if checkpointed:
                cache.con.execute("CHECKPOINT")
    except (duckdb.IOException, duckdb.FatalException) as e:
        # a full disk, an I/O error: the transaction was not committed
        raise WriteError(f"cannot write the cache {path}: {first_line(e)}") from None
    except duckdb.OutOfMemoryException:
        # the transaction was not committed: the cache is as it was
        raise WriteError(
            f"cannot write the cache {path}: DuckDB needs more memory than its "
            f"{os.environ.get(MEMORY_LIMIT_ENV) or 'default'} limit for it (raise "
            f"--memory-limit, {MEMORY_LIMIT_ENV})"
        ) from None
    return result
