"""DuckDB views over the Parquet tables, named like the tables.

For every table in `recorder.schemas`:
- `raw.<table>`: every row of every file. A typed, empty `SELECT ... WHERE false`
  built from the canonical pyarrow schema is unioned BY NAME with the files, so a
  table with no files is an empty view with the canonical columns, and a file
  written before a column existed reads that column as NULL.
- `main.<table>`: the latest `recorded_at` per natural key (account_id, region,
  pipeline + the table's key), so re-recorded rows count once.
The derived views and macros (`stage_runs`, `in_window`, `pipeline_matches`) are in
`sql/_views.sql`. Paths are absolute, so a database file written by `cprec db`
keeps working from any directory.
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


def raw_view_sql(root: Path, table: Table) -> str:
    typed = [f"CAST(NULL AS {duckdb_type(f.type)}) AS {ident(f.name)}" for f in table.schema]
    typed += [f"CAST(NULL AS {t}) AS {k}" for k, t in partition_keys(table)]
    empty = "SELECT " + ", ".join(typed) + " WHERE false"
    if not has_files(root, table):
        return f"CREATE OR REPLACE VIEW raw.{table.name} AS {empty};"
    hive_types = ", ".join(f"'{k}': {t}" for k, t in partition_keys(table))
    files = (
        f"SELECT * FROM read_parquet({sql_string(file_glob(root, table))}, "
        f"hive_partitioning = true, union_by_name = true, hive_types = {{{hive_types}}})"
    )
    return f"CREATE OR REPLACE VIEW raw.{table.name} AS {empty} UNION ALL BY NAME {files};"


def latest_view_sql(table: Table) -> str:
    key = ["account_id", "region"] + (["pipeline"] if table.per_pipeline else []) + list(table.key)
    return (
        f"CREATE OR REPLACE VIEW main.{table.name} AS SELECT * FROM raw.{table.name} "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(map(ident, key))} "
        "ORDER BY recorded_at DESC NULLS LAST, run_id DESC NULLS LAST) = 1;"
    )


def derived_views_sql() -> str:
    return resources.files("queries").joinpath("sql/_views.sql").read_text(encoding="utf-8")


def create_views(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Create (or replace) every view in `con`, reading the tables under `root`."""
    root = Path(root).resolve()
    con.execute("CREATE SCHEMA IF NOT EXISTS raw;")
    for table in TABLES.values():
        con.execute(raw_view_sql(root, table))
        con.execute(latest_view_sql(table))
    con.execute(derived_views_sql())
