"""The storage layout, owned here and nowhere else: where each table's files live and
how a reader reads them back.

    <root>/<table>/pipeline=<name>/dt=<YYYY-MM-DD>/<file>.parquet
    <root>/collection_runs/dt=<YYYY-MM-DD>/<file>.parquet

Every writer (store, compaction), reader (views, cache, known state) and test asks
this module for partition paths, file listings, the natural key, the "latest
recording wins" rule and the SQL that reads a table's files with pinned types.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from recorder.errors import UserError
from recorder.schemas import TABLES, Table

if TYPE_CHECKING:
    from recorder.root import DataRoot

PARQUET = ".parquet"
# Hive readers (DuckDB, Athena) read a partition value spelled like this as NULL. It
# is a valid pipeline name, so readers map it back (read_parquet_sql).
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"

_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.bool_(): "BOOLEAN",
    pa.float64(): "DOUBLE",
    pa.date32(): "DATE",
}

# A snapshot is written as three tables, stage_states last (it carries the hash the
# next run compares). Its stage_states rows are the commit point: readers show
# action and condition states only of snapshots whose stage_states rows exist, so a
# collector killed mid-snapshot never shows half of one.
COMMITTED_BY = {
    "action_states": ("stage_states", ("snapshot_at",)),
    "condition_states": ("stage_states", ("snapshot_at",)),
}


# -- paths --------------------------------------------------------------------------
# A root is a recorder.root.DataRoot; a path under it is a pathlib.Path, or an
# s3.S3Path for `s3://` roots. How each kind lists its files is the root's.


def partition_dir(root: DataRoot, table: str, pipeline: str | None, dt: date) -> Path:
    base = root / table
    if TABLES[table].per_pipeline:
        if not pipeline:
            raise ValueError(f"{table} rows need a pipeline")
        base = base / f"pipeline={pipeline}"
    return base / f"dt={dt.isoformat()}"


def partition_of(root: DataRoot, table: str, path: str | Path) -> tuple[str | None, str]:
    """(pipeline, dt) of a file under `root`, as spelled in its path."""
    rel = root.file(path).relative_to(root / table).parts
    if TABLES[table].per_pipeline:
        return rel[0].removeprefix("pipeline="), rel[1].removeprefix("dt=")
    return None, rel[0].removeprefix("dt=")


def partitions_of(root: DataRoot, table: str, paths: list[str]) -> list[tuple[str | None, str]]:
    """`partition_of` for many paths (strings) of one table: string slicing, no Path
    objects, for the hundreds of thousands of files of a first cache build."""
    prefix = str(root / table) + "/"
    depth = 3 if TABLES[table].per_pipeline else 2
    found = []
    for p in paths:
        rel = p[len(prefix) :].split("/") if p.startswith(prefix) else []
        if len(rel) != depth:
            found.append(partition_of(root, table, p))
        elif depth == 3:
            found.append((rel[0].removeprefix("pipeline="), rel[1].removeprefix("dt=")))
        else:
            found.append((None, rel[0].removeprefix("dt=")))
    return found


def table_of(root: DataRoot, path: str | Path) -> str:
    return root.file(path).relative_to(root.path).parts[0]


def partitions(root: DataRoot, table: str) -> list[tuple[str | None, date, Path]]:
    """(pipeline, dt, directory) of every partition of a table, sorted."""
    per_pipeline = TABLES[table].per_pipeline
    dirs = root.folders(root / table, "pipeline=*/dt=*" if per_pipeline else "dt=*", PARQUET)
    found = []
    for d in dirs:
        try:
            dt = date.fromisoformat(d.name.removeprefix("dt="))
        except ValueError:
            continue
        found.append((d.parent.name.removeprefix("pipeline=") if per_pipeline else None, dt, d))
    return found


def partition_files(root: DataRoot, directory: Path) -> list[Path]:
    """The data files of one partition directory, sorted."""
    return root.files_in(directory, PARQUET)


def table_files(root: DataRoot, table: str) -> list[Path]:
    """Every data file of a table (a directory walk, no glob: O(files), no sorting)."""
    return list(_files(root, table))


def has_files(root: DataRoot, table: str) -> bool:
    """Whether a table has a data file (the walk stops at the first)."""
    return next(_files(root, table), None) is not None


def list_files(root: DataRoot, tables: Iterable[str] = TABLES) -> dict[str, list[Path]]:
    return {name: table_files(root, name) for name in tables}


def iter_files(root: DataRoot, table: str) -> Iterator[Path]:
    """Every data file of a table, as the walk finds them (a generator: a caller that
    streams them holds none of the others)."""
    return _files(root, table)


def _files(root: DataRoot, table: str) -> Iterator[Path]:
    return root.walk(root / table, 3 if TABLES[table].per_pipeline else 2, PARQUET)


GLOB_CHARACTERS = frozenset("*?[]{}")


def file_glob(root: DataRoot | Path, table: Table) -> str:
    """The glob of a table's files. A root whose path holds a glob character would
    match other directories (`d[1]` reads `d1`), so it is refused."""
    odd = sorted(GLOB_CHARACTERS & set(str(root)))
    if odd:
        raise UserError(
            f"data root {root}: its path holds {' '.join(odd)}, which file globs would "
            "read as patterns; use a path without them"
        )
    parts = [table.name] + (["pipeline=*"] if table.per_pipeline else []) + ["dt=*", "*.parquet"]
    return str(root / "/".join(parts))


# -- SQL ------------------------------------------------------------------------------


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    """A SQL string literal. Only for paths in view definitions, which cannot take parameters."""
    return "'" + value.replace("'", "''") + "'"


def duckdb_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    return _DUCKDB_TYPES[t]  # a KeyError here means schemas.py grew a type: add it


def partition_keys(table: Table) -> list[tuple[str, str]]:
    return ([("pipeline", "VARCHAR")] if table.per_pipeline else []) + [("dt", "DATE")]


def columns(table: Table) -> list[tuple[str, str]]:
    """(name, DuckDB type) of every column a reader sees: the schema's, then the partition keys."""
    return [(f.name, duckdb_type(f.type)) for f in table.schema] + partition_keys(table)


def natural_key(table: Table) -> list[str]:
    return ["account_id", "region"] + (["pipeline"] if table.per_pipeline else []) + list(table.key)


# "Latest recording wins": of two recordings of one natural key, the one with the later
# recorded_at, and at the same recorded_at the one with the greater run_id; NULL loses.
# Every reader and writer orders (latest_first_sql) or compares (supersedes_sql) by
# these columns, so the views, compaction and the cache keep the same row.
RECENCY = ("recorded_at", "run_id")


def latest_first_sql() -> str:
    """The ORDER BY terms that put the recording that wins first."""
    return ", ".join(f"{ident(c)} DESC NULLS LAST" for c in RECENCY)


def supersedes_sql(a: str, b: str) -> str:
    """SQL true when row `a` wins over row `b` (aliases of two recordings of one natural
    key): `a` sorts before `b` in latest_first_sql's order. False, never NULL, otherwise
    (a tie included), so it can be negated."""

    def from_column(i: int) -> str:
        x, y = f"{a}.{ident(RECENCY[i])}", f"{b}.{ident(RECENCY[i])}"
        wins = f"coalesce({x} > {y}, {x} IS NOT NULL AND {y} IS NULL)"
        if i + 1 == len(RECENCY):
            return wins
        return f"({wins} OR ({x} IS NOT DISTINCT FROM {y} AND {from_column(i + 1)}))"

    return from_column(0)


def latest_only_sql(table: Table) -> str:
    """The QUALIFY clause keeping one row per natural key: the latest recording."""
    return (
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(map(ident, natural_key(table)))} "
        f"ORDER BY {latest_first_sql()}) = 1"
    )


def latest_rows_sql(table: Table, relation: str) -> str:
    """The rows of `relation` latest_only_sql keeps, as DISTINCT ON: the same rule (the
    first row of each natural key in latest_first_sql's order), for the readers' views
    over the Parquet files. DuckDB reserves a quarter of the working memory a window
    needs for it (8 MB a scan, not 32), and a plan over the files repeats the
    deduplication of a table for each relation that reads it (`dora`: dozens)."""
    keys = ", ".join(map(ident, natural_key(table)))
    return f"SELECT DISTINCT ON ({keys}) * FROM {relation} ORDER BY {keys}, {latest_first_sql()}"


def superseded_sql(table: Table, relation: str) -> str:
    """The rowid of every row of `relation` (a table) that latest_only_sql would drop:
    the same rule, applied after the rows are stored, over the key columns only."""
    keys = ", ".join(map(ident, natural_key(table)))
    return (
        f"SELECT rowid FROM (SELECT rowid, row_number() OVER (PARTITION BY {keys} "
        f"ORDER BY {latest_first_sql()}) AS n "
        f"FROM {relation}) WHERE n > 1"
    )


def typed_empty_sql(table: Table) -> str:
    """A typed, empty relation with the table's columns, to union BY NAME with the files."""
    return (
        "SELECT "
        + ", ".join(f"CAST(NULL AS {t}) AS {ident(n)}" for n, t in columns(table))
        + " WHERE false"
    )


def read_parquet_sql(table: Table, files: str, *, union_by_name: bool = True) -> str:
    """The rows of `files` (a SQL expression: a glob or a list) with the canonical columns.

    Partition types are pinned (a pipeline named `42` stays text), a file written
    before a column existed reads it as NULL, and a pipeline named like Hive's NULL
    partition reads back as its name (no other partition value can be NULL).
    `union_by_name=False` only for files known to hold every column of the schema
    (`complete_files_sql`): DuckDB then maps them by name without reading every
    footer before the scan.
    """
    hive_types = ", ".join(f"'{k}': {t}" for k, t in partition_keys(table))
    replace = (
        f" REPLACE (coalesce(pipeline, {sql_string(HIVE_NULL)}) AS pipeline)"
        if table.per_pipeline
        else ""
    )
    return (
        f"SELECT *{replace} FROM ({typed_empty_sql(table)} UNION ALL BY NAME "
        f"SELECT * FROM read_parquet({files}, hive_partitioning = true, "
        f"union_by_name = {str(union_by_name).lower()}, hive_types = {{{hive_types}}}))"
    )


def file_schema_sql(files: str) -> str:
    """(file_name, name, duckdb_type) of every column of every file of `files` (SQL)."""
    return (
        f"SELECT file_name, name, duckdb_type FROM parquet_schema({files}) "
        "WHERE duckdb_type IS NOT NULL"
    )


def complete_files_sql(table: Table, schema: str) -> str:
    """The files of `schema` (a relation of file_schema_sql rows, already checked by
    conformance_sql) that hold exactly the schema's columns."""
    names = ", ".join(sql_string(f.name) for f in table.schema)
    n = len(table.schema)
    return (
        f"SELECT file_name FROM {schema} GROUP BY file_name HAVING count(*) = {n} "
        f"AND count(DISTINCT name) FILTER (WHERE name IN ({names})) = {n}"
    )


def conformance_sql(table: Table, files: str, *, schema: str | None = None) -> str:
    """The first file of `files` that cannot be read as `table`, with the reason (or no row).

    A file conflicts when a canonical column has another type, when it lacks a
    natural-key column or `recorded_at` (a foreign file would read as rows of NULL
    keys), or when it holds a partition key (the path alone carries those).
    `schema`: a relation already holding file_schema_sql(files) (then `files` is unused).
    The footers are read once (MATERIALIZED: the checks below read `s` three times).
    """
    spelled = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}  # as parquet_schema() names it
    canon = ", ".join(
        f"({sql_string(f.name)}, {sql_string(spelled.get(t := duckdb_type(f.type), t))})"
        for f in table.schema
    )
    required = ", ".join(
        sql_string(c) for c in [*natural_key(table), "recorded_at"] if c != "pipeline"
    )
    keys = ", ".join(sql_string(k) for k, _ in partition_keys(table))
    return f"""
        WITH s AS MATERIALIZED (
            {f"SELECT * FROM {schema}" if schema else file_schema_sql(files)}
        ), canon(name, type) AS (VALUES {canon}),
        bad AS (
            SELECT s.file_name, 'column ' || s.name || ' is ' || s.duckdb_type
                   || ', not ' || c.type AS why
            FROM s JOIN canon c USING (name) WHERE s.duckdb_type <> c.type
            UNION ALL
            SELECT file_name, 'partition key ' || name || ' inside the file'
            FROM s WHERE name IN ({keys})
            UNION ALL
            SELECT f.file_name, 'no column ' || r.name
            FROM (SELECT DISTINCT file_name FROM s) f
            CROSS JOIN (SELECT unnest([{required}]) AS name) r
            ANTI JOIN s ON s.file_name = f.file_name AND s.name = r.name
        )
        SELECT file_name, why FROM bad ORDER BY file_name, why LIMIT 1
    """
