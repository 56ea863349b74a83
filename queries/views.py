"""DuckDB views over the Parquet tables, named like the tables.

For every table in `recorder.schemas`:
- `raw.<table>`: every row of every file. A typed, empty `SELECT ... WHERE false`
  built from the canonical pyarrow schema is unioned BY NAME with the files, so a
  table with no files is an empty view with the canonical columns, and a file
  written before a column existed reads that column as NULL.
- `main.<table>`: the latest `recorded_at` per natural key (account_id, region,
  pipeline + the table's key), so re-recorded rows count once.
The macros (`in_window`, `pipeline_matches`, ...) are in `sql/_macros.sql`, and the
`stage_runs` view is `sql/_stage_runs.sql` over `action_executions`. Paths are
absolute, so a database file written by `cprec db` keeps working from any directory.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from recorder.schemas import TABLES, Table

_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.bool_(): "BOOLEAN",
    pa.float64(): "DOUBLE",
    pa.date32(): "DATE",
}


def duckdb_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    return _DUCKDB_TYPES[t]  # a KeyError here means schemas.py grew a type: add it


def sql_string(value: str) -> str:
    """A SQL string literal. Only for paths in view definitions, which cannot take parameters."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def partition_keys(table: Table) -> list[tuple[str, str]]:
    keys = [("pipeline", "VARCHAR")] if table.per_pipeline else []
    return keys + [("dt", "DATE")]


def _glob_parts(table: Table) -> list[str]:
    return [table.name] + (["pipeline=*"] if table.per_pipeline else []) + ["dt=*", "*.parquet"]


def file_glob(root: Path, table: Table) -> str:
    return str(Path(root, *_glob_parts(table)))


def has_files(root: Path, table: Table) -> bool:
    return next(Path(root).glob("/".join(_glob_parts(table))), None) is not None


def columns(table: Table) -> list[tuple[str, str]]:
    """(name, DuckDB type) of every column a view exposes: the schema's, then the partition keys."""
    return [(f.name, duckdb_type(f.type)) for f in table.schema] + partition_keys(table)


def typed_empty_sql(table: Table) -> str:
    """A typed, empty relation with the table's columns, to union BY NAME with the files."""
    return (
        "SELECT "
        + ", ".join(f"CAST(NULL AS {t}) AS {ident(n)}" for n, t in columns(table))
        + (" WHERE false")
    )


def read_parquet_sql(table: Table, files: str) -> str:
    """`read_parquet` over `files` (a SQL expression) with the pinned partition types."""
    hive_types = ", ".join(f"'{k}': {t}" for k, t in partition_keys(table))
    return (
        f"SELECT * FROM read_parquet({files}, hive_partitioning = true, "
        f"union_by_name = true, hive_types = {{{hive_types}}})"
    )


def natural_key(table: Table) -> list[str]:
    return ["account_id", "region"] + (["pipeline"] if table.per_pipeline else []) + list(table.key)


def latest_only_sql(table: Table) -> str:
    """The QUALIFY clause that keeps the latest recording of each natural key."""
    return (
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(map(ident, natural_key(table)))} "
        "ORDER BY recorded_at DESC NULLS LAST, run_id DESC NULLS LAST) = 1"
    )


def raw_view_sql(root: Path, table: Table) -> str:
    empty = typed_empty_sql(table)
    if not has_files(root, table):
        return f"CREATE OR REPLACE VIEW raw.{table.name} AS {empty};"
    files = read_parquet_sql(table, sql_string(file_glob(root, table)))
    return f"CREATE OR REPLACE VIEW raw.{table.name} AS {empty} UNION ALL BY NAME {files};"


def latest_view_sql(table: Table) -> str:
    return (
        f"CREATE OR REPLACE VIEW main.{table.name} AS SELECT * FROM raw.{table.name} "
        f"{latest_only_sql(table)};"
    )


def sql_file(name: str) -> str:
    """The text of `queries/sql/<name>` (package data)."""
    return resources.files("queries").joinpath("sql", name).read_text(encoding="utf-8")


def create_views(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Create (or replace) every view in `con`, reading the tables under `root`."""
    root = Path(root).resolve()
    con.execute("CREATE SCHEMA IF NOT EXISTS raw;")
    for table in TABLES.values():
        con.execute(raw_view_sql(root, table))
        con.execute(latest_view_sql(table))
    con.execute(sql_file("_macros.sql"))
    con.execute(f"CREATE OR REPLACE VIEW stage_runs AS {sql_file('_stage_runs.sql')};")
