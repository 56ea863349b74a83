"""The relations every reader sees, over the Parquet files or over the query cache.

For every table in `recorder.schemas`:
- `raw.<table>` (Parquet only): every row of every file, with the canonical columns
  (recorder/layout.py reads them).
- `<table>`: the latest recording per natural key (layout.latest_only_sql), and for
  state tables only snapshots whose commit point exists (layout.COMMITTED_BY).
- the derived relations of DERIVED (`stage_runs`, `execution_times`, `failed_steps`:
  `sql/_<name>.sql`), the macros of `sql/_macros.sql`, the deployment rule of
  `sql/_deploy_rule.sql` and the delivery table macros of `sql/_delivery.sql`
  (deployments, restores, waits).

Both sources give the same relations: the cache stores each table deduplicated and
the derived relations materialised (plus the default rule's `deploy_attempts` rows),
so only the commit filter and where the derived rows come from differ. Before Parquet
views are created every file is checked against its table's schema
(layout.conformance_sql): a conflicting file is one line naming it, never rows counted
under the wrong type.
"""

from __future__ import annotations

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
DERIVED = ("stage_runs", "action_runs", "execution_times", "failed_steps")

# The per-pipeline statistics of `sql/_stats.sql`: `<name>(since, until)` reads the
# cache's `stored_<name>` rows (`compute_<name>(NULL, NULL)`, recomputed there for the
# pipelines a refresh touched) for the open window and computes any other window.
STATS = (
    "stage_duration_stats",
    "stage_wait_stats",
    "stage_retry_stats",
    "action_stats",
    "flaky_stats",
    "execution_stats",
    "weekly_execution_stats",
)

# The cache's rows of `rule_attempts([])` (sql/_deploy_rule.sql, the default rule),
# recomputed there for the pipelines a refresh touched.
DEFAULT_ATTEMPTS = "default_deploy_attempts"


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


def create_parquet_views(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Create `raw.*`, the latest-row views, the macros and `stage_runs` over `root`."""
    root = layout.as_root(root).resolve()
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for table in TABLES.values():
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
    for table in TABLES.values():
        latest = f"SELECT * FROM raw.{table.name} {layout.latest_only_sql(table)}"
        con.execute(
            f"CREATE OR REPLACE VIEW main.{table.name} AS {_committed(table, latest, 'main')}"
        )
    create_macros(con, temp=False)
    for name in DERIVED:
        con.execute(f"CREATE OR REPLACE VIEW main.{name} AS {sql_file(f'_{name}.sql')}")
    create_stats_macros(con, temp=False, stored=None)
    create_delivery_macros(con, temp=False, attempts=None)


def create_cache_views(con: duckdb.DuckDBPyConnection, catalog: str) -> None:
    """Temporary views named like the tables over the cache attached as `catalog`."""
    for table in TABLES.values():
        latest = f"SELECT * FROM {catalog}.cache.{table.name}"
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {table.name} AS "
            f"{_committed(table, latest, f'{catalog}.cache')}"
        )
    for name in [*DERIVED, DEFAULT_ATTEMPTS]:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {catalog}.cache.{name}")
    create_macros(con, temp=True)
    create_stats_macros(con, temp=True, stored=f"{catalog}.cache")
    create_delivery_macros(con, temp=True, attempts=DEFAULT_ATTEMPTS)


def create_stats_macros(con: duckdb.DuckDBPyConnection, *, temp: bool, stored: str | None) -> None:
    """`compute_<name>(since, until)` of `sql/_stats.sql` and, for each name of STATS,
    `<name>(since, until)`: with `stored` (the schema holding `stored_<name>` tables, the
    cache's), the stored rows for the open window (both NULL) and the computed ones for
    any other; without, always computed. DuckDB drops the branch whose filter is false
    when it plans the query (the window is bound values by then)."""
    create_macros(con, temp=temp, name="_stats.sql")
    kind = "TEMP MACRO" if temp else "MACRO"
    whole = "since IS NULL AND until IS NULL"
    for name in STATS:
        body = (
            f"SELECT * FROM {stored}.stored_{name} WHERE {whole} "
            f"UNION ALL SELECT * FROM compute_{name}(since, until) WHERE NOT ({whole})"
            if stored
            else f"SELECT * FROM compute_{name}(since, until)"
        )
        con.execute(f"CREATE OR REPLACE {kind} {name}(since, until) AS TABLE {body}")


def create_delivery_macros(
    con: duckdb.DuckDBPyConnection, *, temp: bool, attempts: str | None
) -> None:
    """The deployment rule (`sql/_deploy_rule.sql`), `deploy_attempts(patterns)` and the
    delivery macros (`sql/_delivery.sql`), after every view.

    `attempts`: a relation holding `rule_attempts([])` (the cache's), read for the
    default rule; other patterns are always computed. Both branches are filtered on the
    patterns' length, so DuckDB drops the other one when it plans the query (the
    patterns are bound values by then): the default rule never computes, other patterns
    never read the stored rows.
    """
    create_macros(con, temp=temp, name="_deploy_rule.sql")
    kind = "TEMP MACRO" if temp else "MACRO"
    empty = "len(CAST(patterns AS VARCHAR[])) = 0"
    body = (
        f"SELECT * FROM {attempts} WHERE {empty} "
        f"UNION ALL SELECT * FROM rule_attempts(patterns) WHERE NOT {empty}"
        if attempts
        else "SELECT * FROM rule_attempts(patterns)"
    )
    con.execute(f"CREATE OR REPLACE {kind} deploy_attempts(patterns) AS TABLE {body}")
    create_macros(con, temp=temp, name="_delivery.sql")


def create_macros(con: duckdb.DuckDBPyConnection, *, temp: bool, name: str = "_macros.sql") -> None:
    """The macros of `sql/<name>`: `_macros.sql` (scalar, needs no view), or
    `_stats.sql`, `_deploy_rule.sql` and `_delivery.sql` (table macros, bound at creation:
    after every view; create_stats_macros, create_delivery_macros)."""
    sql = sql_file(name)
    if temp:  # a read-only database takes temporary objects only
        sql = sql.replace("CREATE OR REPLACE MACRO", "CREATE OR REPLACE TEMP MACRO")
    con.execute(sql)
