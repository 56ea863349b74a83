"""The relations every reader sees, over the Parquet files or over the query cache.

For every table in `recorder.schemas`:
- `raw.<table>` (Parquet only): every row of every file, with the canonical columns
  (recorder/layout.py reads them).
- `<table>`: the latest recording per natural key (layout.latest_only_sql), and for
  state tables only snapshots whose commit point exists (layout.COMMITTED_BY).
- every relation the query layer declares (queries/relations.py), as recorder/derive.py
  makes them: computed from the views above, or read from the rows the cache stores.

Both sources give the same relations: the cache stores each table deduplicated and each
relation's rows (for the default arguments of one with parameters), so only the commit
filter and where those rows come from differ. Before Parquet
views are created every file is checked against its table's schema
(layout.conformance_sql): a conflicting file is one line naming it, never rows counted
under the wrong type.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from recorder import derive, layout
from recorder.derive import Catalog
from recorder.errors import UserError, first_line
from recorder.root import DataRoot
from recorder.schemas import TABLES, Table

# Every connection's session settings. DuckDB draws a progress bar on stdout for a query
# that runs over 2 s: it would land in the middle of a CSV or a report.
SESSION_SQL = "SET TimeZone = 'UTC'; SET enable_progress_bar = false"

# What DuckDB may hold in memory before it spills to disk, in every connection cprec opens
# (--memory-limit, or this variable). DuckDB's own default is 80 % of the machine's RAM,
# so a cron job's memory grew with the history it reads (15 GB for a recompute of 500
# pipelines x 365 days); with a fixed limit the process stays under a fixed ceiling
# whatever the history (bench/RESULTS.md, section 8) and what does not fit is spilled.
# The default is 256MB for a connection over the query cache (every command over it fits:
# bench/RESULTS.md, section 8) and 1GB for one over the Parquet files: DuckDB reserves
# working memory per operator, and a plan over the files repeats the deduplication of a
# table for each relation that reads it (`dora` over the files of a 3-pipeline demo is
# refused below ~512MB although its process peaks at ~250 MB).
MEMORY_LIMIT_ENV = "CPREC_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "256MB"
FILES_MEMORY_LIMIT = "1GB"
_spills = itertools.count()


def memory_limit(default: str = DEFAULT_MEMORY_LIMIT) -> str:
    """The memory limit a connection gets: the user's, else `default`."""
    return os.environ.get(MEMORY_LIMIT_ENV) or default


def configure(
    con: duckdb.DuckDBPyConnection, spill: Path | None = None, *, files: bool = False
) -> None:
    """Apply the session settings and the memory limit to `con` (`files`: a connection
    over the Parquet files), spilling to `spill` (default a directory of this process and
    connection under the system's temporary directory: DuckDB creates it when it first
    spills and removes it when it closes)."""
    con.execute(SESSION_SQL)
    limit = memory_limit(FILES_MEMORY_LIMIT if files else DEFAULT_MEMORY_LIMIT)
    try:
        con.execute(f"SET memory_limit = {layout.sql_string(limit)}")
    except duckdb.Error as e:
        raise UserError(f"memory limit {limit!r} ({MEMORY_LIMIT_ENV}): {first_line(e)}") from None
    if spill is None:
        spill = Path(tempfile.gettempdir()) / f"cprec-spill-{os.getpid()}-{next(_spills)}"
    con.execute(f"SET temp_directory = {layout.sql_string(str(spill))}")


def committed_sql(table: Table, latest: str, schema: str) -> str:
    """`latest` (a relation of the table's latest rows), limited to committed snapshots."""
    if table.name not in layout.COMMITTED_BY:
        return latest
    parent, keys = layout.COMMITTED_BY[table.name]
    on = " AND ".join(
        f"p.{layout.ident(k)} = t.{layout.ident(k)}"
        for k in [*layout.natural_key(TABLES[parent])[:3], *keys]
    )
    return f"SELECT t.* FROM ({latest}) t SEMI JOIN {schema}.{parent} p ON {on}"


def check_files(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    files: str,
    params: dict | None = None,
    *,
    schema: str | None = None,
) -> None:
    """Raise UserError naming the first file of `files` (SQL) that conflicts with `table`.
    `schema`: a relation already holding their layout.file_schema_sql rows."""
    try:
        sql = layout.conformance_sql(table, files, schema=schema)
        bad = con.execute(sql, None if schema else params).fetchone()
    except (duckdb.IOException, duckdb.InvalidInputException) as e:
        raise UserError(f"cannot read {table.name} files: {first_line(e)}") from None
    if bad:
        raise UserError(f"{bad[0]} is not a cprec {table.name} file ({bad[1]}); move it out")


def create_parquet_views(
    con: duckdb.DuckDBPyConnection,
    root: str | Path | DataRoot,
    tables: tuple[str, ...] | None = None,
    catalog: Catalog | None = None,
) -> None:
    """Create `raw.*`, the latest-row views and every relation of `catalog` (default the
    query layer's) over `root`; with `tables`, only the raw and latest-row views of those
    (and of the tables that commit their rows, layout.COMMITTED_BY)."""
    objects = Pending(parquet_objects(con, root, catalog))
    objects.ensure(" ".join(tables) if tables is not None else None)


class Pending:
    """A reader's objects not created yet, each created the first time a statement (or an
    object it needs) names it: opening the Parquet files costs what a statement reads,
    not a check and a bind of every table and relation (at 15 pipelines x 45 days, 5 s
    for `SELECT 1`). A name in a string or a comment creates what it names: a little
    work, never a missing object."""

    def __init__(self, objects: list[ReaderObject]):
        self.order = [o.name for o in objects]
        self.pending = {o.name: o for o in objects}
        names = sorted(self.pending, key=len, reverse=True)
        self.pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")

    def ensure(self, text: str | None) -> None:
        """Create every object `text` names, and what they need (None: every object)."""
        if not self.pending:
            return
        todo = set(self.pending) if text is None else set(self.pattern.findall(text))
        wanted: set[str] = set()
        while todo:
            name = todo.pop()
            if name in wanted or name not in self.pending:
                continue
            wanted.add(name)
            todo |= set(self.pattern.findall(self.pending[name].text)) - wanted
        for name in self.order:  # in the order they can be created
            if name in wanted and name in self.pending:
                self.pending[name].create()
                del self.pending[name]


@dataclass
class ReaderObject:
    """One view or macro a reader over the Parquet files may need: `create()` makes it;
    `text`, what it is made of (the names of other objects in it are what it needs)."""

    name: str
    text: str
    create: Callable[[], None]


def parquet_objects(
    con: duckdb.DuckDBPyConnection, root: str | Path | DataRoot, catalog: Catalog | None = None
) -> list[ReaderObject]:
    """Every view and macro of a reader over `root`, in the order they can be created:
    the tables' raw and latest-row views (checking their files on creation), then the
    relations of `catalog` and the macros (recorder/derive.py)."""
    root = DataRoot.of(root).resolve()
    objects = []
    for table in TABLES.values():
        parent = layout.COMMITTED_BY.get(table.name, (None,))[0]
        objects.append(ReaderObject(
            table.name, parent or "", functools.partial(_table_views, con, root, table)
        ))  # fmt: skip
    for sql in derive.reader_sql(catalog or derive.default_catalog(), temp=False, stored=None):
        for statement in duckdb.extract_statements(sql):
            text = statement.query
            match = _DEFINES.search(text)
            name = match.group(1) if match else text
            objects.append(ReaderObject(name, text, functools.partial(con.execute, text)))
    return objects


_DEFINES = re.compile(r"CREATE\s+OR\s+REPLACE\s+(?:TEMP\s+)?(?:VIEW|MACRO)\s+(\w+)", re.I)


def _table_views(con: duckdb.DuckDBPyConnection, root: DataRoot, table: Table) -> None:
    """The raw and latest-row views of `table` over the files of `root`.

    How a view names its files depends on the kind of root, and stays here because it is
    the view's SQL: a glob for a directory (DuckDB lists it as it reads), the objects of
    one listing for S3."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    if root.is_s3:
        # The objects of one listing, named: a glob would list S3 again (a request per
        # partition) every time a query reads the view.
        files = layout.table_files(root, table.name)
        glob = "[" + ", ".join(layout.sql_string(str(f)) for f in files) + "]"
    else:
        files = layout.has_files(root, table.name)
        glob = layout.sql_string(layout.file_glob(root, table))
    if not files:
        source = layout.typed_empty_sql(table)
    else:
        source = layout.read_parquet_sql(table, glob, union_by_name=not _all_complete(
            con, table, glob))  # fmt: skip
    con.execute(f"CREATE OR REPLACE VIEW raw.{table.name} AS {source}")
    latest = layout.latest_rows_sql(table, f"raw.{table.name}")
    con.execute(
        f"CREATE OR REPLACE VIEW main.{table.name} AS {committed_sql(table, latest, 'main')}"
    )


def _all_complete(con: duckdb.DuckDBPyConnection, table: Table, files: str) -> bool:
    """Check every file of `files` and say whether they all hold exactly the table's
    columns. Then the view reads them without union_by_name, which would read every
    footer again each time a statement binds it: every relation and macro over the views
    binds them, and at 15 pipelines x 45 days that was 27 s and 1.1 GB for `SELECT 1`. A
    tree holding files of an older schema (until compaction rewrites them) pays that
    price."""
    complete, every = checked_files(con, table, files)
    return len(complete) == every


def checked_files(
    con: duckdb.DuckDBPyConnection, table: Table, files: str, params: dict | None = None
) -> tuple[set[str], int]:
    """check_files for `files` (SQL: a glob, a list, or a parameter of `params`), each
    footer read once: (the files that hold exactly the table's columns, which need no
    union_by_name; how many files there are)."""
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE cprec_file_schema AS "
                    + layout.file_schema_sql(files), params)  # fmt: skip
    except (duckdb.IOException, duckdb.InvalidInputException) as e:
        raise UserError(f"cannot read {table.name} files: {first_line(e)}") from None
    try:
        check_files(con, table, files, schema="cprec_file_schema")
        sql = layout.complete_files_sql(table, "cprec_file_schema")
        complete = {r[0] for r in con.execute(sql).fetchall()}
        every = con.execute("SELECT count(DISTINCT file_name) FROM cprec_file_schema").fetchone()[0]
    finally:
        # (an error on its way up may have aborted the transaction, which refuses the drop)
        with contextlib.suppress(duckdb.Error):
            con.execute("DROP TABLE cprec_file_schema")
    return complete, every


def create_cache_views(con: duckdb.DuckDBPyConnection, catalog: str, relations: Catalog) -> None:
    """Temporary views named like the tables over the cache attached as `catalog`."""
    for sql in reader_sql(f"{catalog}.cache", relations, temp=True):
        con.execute(sql)


def reader_sql(schema: str, catalog: Catalog, *, temp: bool) -> list[str]:
    """The statements that give a connection every relation over the cache's tables in
    `schema`: views named like the tables (committed snapshots only), then the relations
    of `catalog` over their stored rows (derive.reader_sql). Temporary (a reader's) or
    stored in the cache file (recorder/cache.py writes them there)."""
    view = "TEMP VIEW" if temp else "VIEW"
    sql = []
    for table in TABLES.values():
        latest = f"SELECT * FROM {schema}.{table.name}"
        committed = committed_sql(table, latest, schema)
        sql.append(f"CREATE OR REPLACE {view} {table.name} AS {committed}")
    return [*sql, *derive.reader_sql(catalog, temp=temp, stored=schema)]
