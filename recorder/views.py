"""The relations every reader sees, over the Parquet files or over the query cache.

For every table in `recorder.schemas`:
- `raw.<table>` (Parquet only): every row of every file, with the canonical columns
  (recorder/layout.py reads them).
- `<table>`: the latest recording per natural key (layout.latest_only_sql), and for
  state tables only snapshots whose commit point exists (layout.COMMITTED_BY).
- the derived relations of DERIVED (`stage_runs`, `action_runs`, `execution_times`,
  `failed_executions`: `sql/_<name>.sql`), the macros of `sql/_macros.sql`, and the
  table macros of `sql/_deploy_rule.sql`, `_deploy_failures.sql`, `_delivery.sql` and
  `_stats.sql` (deployments, restores, per-pipeline statistics: create_stored_macros).

Both sources give the same relations: the cache stores each table deduplicated, the
derived relations materialised and the rows of STORED for the default rule and the open
window, so only the commit filter and where those rows come from differ. Before Parquet
views are created every file is checked against its table's schema
(layout.conformance_sql): a conflicting file is one line naming it, never rows counted
under the wrong type.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from pathlib import Path

import duckdb

from recorder import layout
from recorder.errors import UserError, first_line
from recorder.s3 import S3Path
from recorder.schemas import TABLES, Table

# Every reader's session settings. DuckDB draws a progress bar on stdout for a query that
# runs over 2 s: it would land in the middle of a CSV or a report.
SESSION_SQL = "SET TimeZone = 'UTC'; SET enable_progress_bar = false"

# Relations derived from the tables, in the order they are built (each reads only the
# tables and the ones before it): a view over the Parquet files, a table in the cache
# (recomputed there for the executions a refresh touched). `sql/_<name>.sql` defines each.
DERIVED = ("stage_runs", "action_runs", "execution_times", "failed_executions")

# What the cache stores beyond the derived relations, name -> parameters: the rows of
# `compute_<name>` for the default rule (patterns empty) and the open window (since and
# until NULL), as `stored_<name>`, recomputed there for the pipelines a refresh touched
# (create_stored_macros). In the order they are built: each reads only the ones before
# it. `deploy_attempts` and `failure_restores` are kept per pipeline (account, region,
# name); the statistics of `sql/_stats.sql` per pipeline name, as the named queries group.
STORED = {
    "deploy_attempts": ("patterns",),
    "failure_restores": ("patterns",),
    "execution_stats": ("since", "until"),
    "weekly_execution_stats": ("since", "until"),
    "execution_time_stats": ("since", "until"),
    "stage_duration_stats": ("since", "until"),
    "stage_wait_stats": ("since", "until"),
    "stage_retry_stats": ("since", "until"),
    "action_stats": ("since", "until"),
    "flaky_stats": ("since", "until"),
    "deploy_stats": ("patterns", "since", "until"),
}
BY_PIPELINE = ("deploy_attempts", "failure_restores")  # the others: by pipeline name
_STORED_WHEN = {
    "patterns": "len(CAST(patterns AS VARCHAR[])) = 0",
    "since": "since IS NULL",
    "until": "until IS NULL",
}
_DEFAULT_ARGS = {"patterns": "[]", "since": "NULL", "until": "NULL"}


def stored_sql(name: str, *, compute: bool = True) -> str:
    """The rows the cache stores for `name` of STORED: computed, or (`compute` False)
    through `<name>(...)`, which reads them where they are stored."""
    args = ", ".join(_DEFAULT_ARGS[p] for p in STORED[name])
    return f"SELECT * FROM {'compute_' if compute else ''}{name}({args})"


def sql_file(name: str) -> str:
    """The text of `recorder/sql/<name>` (package data)."""
    return resources.files("recorder").joinpath("sql", name).read_text(encoding="utf-8")


def _committed(table: Table, latest: str, schema: str) -> str:
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
    con: duckdb.DuckDBPyConnection, root: Path, tables: tuple[str, ...] | None = None
) -> None:
    """Create `raw.*`, the latest-row views, the macros and `stage_runs` over `root`;
    with `tables`, only the raw and latest-row views of those (and of the tables that
    commit their rows, layout.COMMITTED_BY)."""
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
            f"CREATE OR REPLACE VIEW main.{table.name} AS {_committed(table, latest, 'main')}"
        )
    if tables is not None:
        return
    create_macros(con, temp=False)
    for name in DERIVED:
        con.execute(f"CREATE OR REPLACE VIEW main.{name} AS {sql_file(f'_{name}.sql')}")
    create_stored_macros(con, temp=False, stored=None)


def create_cache_views(con: duckdb.DuckDBPyConnection, catalog: str) -> None:
    """Temporary views named like the tables over the cache attached as `catalog`."""
    for sql in reader_sql(f"{catalog}.cache", temp=True):
        con.execute(sql)


def reader_sql(schema: str, *, temp: bool) -> list[str]:
    """The statements that give a connection every relation over the cache's tables in
    `schema`: views named like the tables (committed snapshots only) and the derived
    relations, the macros of `sql/_macros.sql`, then create_stored_macros'. Temporary
    (a reader's) or stored in the cache file (cache.Cache writes them there)."""
    view = "TEMP VIEW" if temp else "VIEW"
    sql = []
    for table in TABLES.values():
        latest = f"SELECT * FROM {schema}.{table.name}"
        sql.append(f"CREATE OR REPLACE {view} {table.name} AS {_committed(table, latest, schema)}")
    for name in DERIVED:
        sql.append(f"CREATE OR REPLACE {view} {name} AS SELECT * FROM {schema}.{name}")
    return [*sql, macros_sql(temp=temp), *stored_macros_sql(temp=temp, stored=schema)]


def fingerprint(*parts: object) -> str:
    """A digest of `parts` and the tables' columns (layout.columns): what identifies the
    objects a cache file stores beside its tables (recorder/cache.py)."""
    columns = [(t.name, layout.columns(t)) for t in TABLES.values()]
    return hashlib.sha256(repr([*parts, columns]).encode()).hexdigest()


@functools.cache
def reader_fingerprint() -> str:
    """What identifies this code's reader relations: reader_sql over the cache's own
    schema, the tables' columns (a view of `SELECT *` stores the column types it was
    created with, and DuckDB 1.4 refuses it once a column is added) and the DuckDB
    version. A cache file that holds them under another fingerprint holds another
    version's, which a reader does not use."""
    return fingerprint(reader_sql("cache", temp=False), duckdb.__version__)


def create_stored_macros(con: duckdb.DuckDBPyConnection, *, temp: bool, stored: str | None) -> None:
    """Execute stored_macros_sql."""
    for sql in stored_macros_sql(temp=temp, stored=stored):
        con.execute(sql)


def stored_macros_sql(*, temp: bool, stored: str | None) -> list[str]:
    """The table macros of `sql/_deploy_rule.sql`, `_deploy_failures.sql`, `_delivery.sql`
    and `_stats.sql`, after every view, with the macros over what the cache stores.

    Each name of STORED gets a macro `<name>(<parameters>)`: with `stored` (the schema of
    the cache's tables), the stored rows `stored_<name>` for the parameters they were
    computed for (the default rule, the open window), the computed rows
    (`compute_<name>`) for any other; without `stored`, always computed. Both branches
    are filtered on the parameters, which are bound values when DuckDB plans the query,
    so it drops the other branch: stored rows are read, or computed, never both.
    """
    before = {  # the files whose macros a name of STORED (and those after it) builds on
        "deploy_attempts": ("_deploy_rule.sql",),
        "failure_restores": ("_deploy_failures.sql",),
        "execution_stats": ("_delivery.sql", "_stats.sql"),
    }
    kind = "TEMP MACRO" if temp else "MACRO"
    sql = []
    for name, params in STORED.items():
        sql.extend(macros_sql(temp=temp, name=file) for file in before.get(name, ()))
        stored_when = " AND ".join(_STORED_WHEN[p] for p in params)
        args = ", ".join(params)
        body = (
            f"SELECT * FROM {stored}.stored_{name} WHERE {stored_when} "
            f"UNION ALL SELECT * FROM compute_{name}({args}) WHERE NOT ({stored_when})"
            if stored
            else f"SELECT * FROM compute_{name}({args})"
        )
        sql.append(f"CREATE OR REPLACE {kind} {name}({args}) AS TABLE {body}")
    return sql


def create_macros(con: duckdb.DuckDBPyConnection, *, temp: bool, name: str = "_macros.sql") -> None:
    """Execute macros_sql."""
    con.execute(macros_sql(temp=temp, name=name))


def macros_sql(*, temp: bool, name: str = "_macros.sql") -> str:
    """The macros of `sql/<name>`: `_macros.sql` (scalar, needs no view), or
    `_stats.sql`, `_deploy_rule.sql`, `_deploy_failures.sql` and `_delivery.sql` (table
    macros, bound at creation: after every view; stored_macros_sql)."""
    sql = sql_file(name)
    if temp:  # a read-only database takes temporary objects only
        sql = sql.replace("CREATE OR REPLACE MACRO", "CREATE OR REPLACE TEMP MACRO")
    return sql
