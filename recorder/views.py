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

import itertools
import os
import tempfile
from pathlib import Path

import duckdb

from recorder import derive, layout
from recorder.derive import Catalog
from recorder.errors import UserError, first_line
from recorder.s3 import S3Path
from recorder.schemas import TABLES, Table

# Every connection's session settings. DuckDB draws a progress bar on stdout for a query
# that runs over 2 s: it would land in the middle of a CSV or a report.
SESSION_SQL = "SET TimeZone = 'UTC'; SET enable_progress_bar = false"

# What DuckDB may hold in memory before it spills to disk, in every connection cprec opens
# (--memory-limit, or this variable). DuckDB's own default is 80 % of the machine's RAM,
# so a cron job's memory grew with the history it reads (15 GB for a recompute of 500
# pipelines x 365 days); with a fixed limit the whole process stays under a fixed
# ceiling (bench/RESULTS.md, section 8: the limit plus ~150 MB of Python, pyarrow and
# boto3) and what does not fit is spilled.
MEMORY_LIMIT_ENV = "CPREC_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "256MB"
_spills = itertools.count()


def configure(con: duckdb.DuckDBPyConnection, spill: Path | None = None) -> None:
    """Apply the session settings and the memory limit to `con`, spilling to `spill`
    (default a directory of this process and connection under the system's temporary
    directory: DuckDB creates it when it first spills and removes it when it closes)."""
    con.execute(SESSION_SQL)
    limit = os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT
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
    root: Path,
    tables: tuple[str, ...] | None = None,
    catalog: Catalog | None = None,
) -> None:
    """Create `raw.*`, the latest-row views and every relation of `catalog` (default the
    query layer's) over `root`; with `tables`, only the raw and latest-row views of those
    (and of the tables that commit their rows, layout.COMMITTED_BY)."""
    root = layout.as_root(root).resolve()
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    chosen = list(TABLES.values())
    if tables is not None:
        by = layout.COMMITTED_BY
        needed = set(tables) | {by[t][0] for t in tables if t in by}
        chosen = [t for t in chosen if t.name in needed]
    for table in chosen:
        if isinstance(root, S3Path):
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
            check_files(con, table, glob)
            source = layout.read_parquet_sql(table, glob)
        con.execute(f"CREATE OR REPLACE VIEW raw.{table.name} AS {source}")
    for table in chosen:
        latest = f"SELECT * FROM raw.{table.name} {layout.latest_only_sql(table)}"
        con.execute(
            f"CREATE OR REPLACE VIEW main.{table.name} AS {committed_sql(table, latest, 'main')}"
        )
    if tables is not None:
        return
    for sql in derive.reader_sql(catalog or derive.default_catalog(), temp=False, stored=None):
        con.execute(sql)


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
