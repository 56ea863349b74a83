"""The DuckDB query layer: deduplicated views over the Parquet tables and named queries.

    con = connect("data")                     # every view created, in memory
    named_queries()["stage-durations"]        # NamedQuery(name, description, sql)
    run_query(con, "stage-durations", since=datetime(2026, 1, 1, tzinfo=UTC))  # -> pyarrow.Table

Named queries are `sql/<name>.sql` (name = file stem, description = first `-- ` line)
with DuckDB named parameters: `$since`, `$until` (TIMESTAMPTZ or NULL = unbounded,
applied to the start time, until exclusive), `$pipelines` (list of GLOB patterns,
empty = all), `$now` (the time ages are measured to) and `$deploy_stages` (GLOBs of
deploy stage names, empty = the default rule of recorder/sql/_delivery.sql). Values
are always bound, never pasted into the SQL.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from queries.relations import catalog
from recorder import cache as cache_mod
from recorder import reader
from recorder.derive import defaults
from recorder.errors import UserError, first_line
from recorder.layout import sql_string
from recorder.reader import data_errors
from recorder.root import DataRoot
from recorder.schemas import TABLES
from recorder.views import configure, create_parquet_views, reader_sql

__all__ = [
    "NamedQuery",
    "connect",
    "get_query",
    "named_queries",
    "run_query",
    "run_sql",
    "write_database",
]

PARAMETERS = ("since", "until", "pipelines", "now", "deploy_stages")
STREAM_BATCH_ROWS = 50_000  # rows per batch of a streamed result
_PARAM = re.compile(r"\$([A-Za-z_]\w*)")
_COMMENT = re.compile(r"--[^\n]*")


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str

    @property
    def parameters(self) -> set[str]:
        return set(_PARAM.findall(_COMMENT.sub("", self.sql)))


@functools.cache
def named_queries() -> dict[str, NamedQuery]:
    """Every `queries/sql/<name>.sql` except `_*.sql`, sorted by name."""
    found = {}
    for entry in resources.files("queries").joinpath("sql").iterdir():
        if not entry.name.endswith(".sql") or entry.name.startswith("_"):
            continue
        sql = entry.read_text(encoding="utf-8")
        description = next(
            (line[3:].strip() for line in sql.splitlines() if line.startswith("-- ")), ""
        )
        name = entry.name[: -len(".sql")]
        found[name] = NamedQuery(name, description, sql)
    return dict(sorted(found.items()))


def get_query(name: str) -> NamedQuery:
    """The named query `name`; an unknown name is a one-line error listing the valid ones."""
    queries = named_queries()
    if name not in queries:
        raise UserError(f"unknown query {name!r}; valid names: {', '.join(queries)}")
    return queries[name]


def connect(
    data_root: str | Path | DataRoot, *, cache: bool | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every view over `data_root` (recorder/reader.py).

    `cache`: None uses the local cache when it holds the last completed state, True
    requires it, False reads the Parquet files only.
    """
    return reader.connect(DataRoot.of(data_root).existing(), cache=cache)


# The storage format of `cprec db` files. DuckDB 2.0 writes new files in a format no
# DuckDB 1.x opens (storage version 69); this one is storage version 64, which DuckDB
# 0.10 and newer open. The views bind from DuckDB 1.1 on (`stage_runs` orders `max_by`
# by a row), so the file is for DuckDB 1.1 and newer: checked with the Python package
# 1.1.0 to 1.5.6 and the CLI 1.4.4 and 1.5.6 (tests/test_db_file.py checks the format).
DB_FILE_STORAGE_VERSION = "v1.1.0"


def write_database(
    path: str | Path, data_root: str | Path | DataRoot, *, materialize: bool = False
) -> str | None:
    """Write a DuckDB database file whose views read the Parquet files under `data_root`,
    or with `materialize` whose tables hold their rows (`_write_tables`; returns where the
    rows came from: "the cache" or "the Parquet files").

    A new file is written whole (under a temporary name, then renamed) in the storage
    format of DB_FILE_STORAGE_VERSION. An existing DuckDB file in that format or an
    older one gets its views replaced in place; one in a newer format (an earlier cprec
    wrote DuckDB's default, and a file's format cannot be lowered) or holding
    materialised tables is written anew, and a materialised file always is: unless the
    file holds objects cprec does not write.
    """
    root = DataRoot.of(data_root).existing()
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"{path.parent} is not a directory")
    if path.exists() and not _is_duckdb_file(path):
        raise UserError(f"{path} exists and is not a DuckDB database file")
    version = None
    if path.exists():
        con = _open_database_file(path)
        version = _storage_version(con)
        in_place = (
            not materialize
            and not _holds_cprec_tables(con)
            and (version is None or _version_key(version) <= _version_key(DB_FILE_STORAGE_VERSION))
        )
        if in_place:
            _write_views(con, root)
            return None
        con.close()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    source = None
    try:
        _remove_database_file(tmp)
        if materialize:
            source = _write_tables(tmp, root)
        else:
            _write_views(_open_database_file(tmp, shown=path), root)
        if path.exists():
            _check_nothing_lost(path, tmp, version)
        # a write-ahead log left beside `path` is never to be replayed onto the new file
        path.with_name(path.name + ".wal").unlink(missing_ok=True)
        os.replace(tmp, path)
    finally:
        _remove_database_file(tmp)
    return source


# What cprec writes into a database file, as (schema, name), in either form.
# (Files of earlier versions held their tables in `main`, as `stored_<name>` for some.)
def _cprec_relations() -> set[tuple[str, str]]:
    names = [*TABLES, *catalog().names]
    return (
        {(s, n) for s in ("main", "cache") for n in names}
        | {("main", f"stored_{n}") for n in names}
        | {("raw", n) for n in TABLES}
    )


def _holds_cprec_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `con`'s database holds a materialised file's tables (views cannot replace them
    in place)."""
    found = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() "
        "WHERE database_name = current_database()"
    ).fetchall()
    return bool(set(found) & _cprec_relations())


def _write_tables(path: Path, root: DataRoot) -> str:
    """Write into the new database `path` every deduplicated table and the rows of every
    relation (for the default arguments of one with parameters) as tables of schema
    `cache`, and in `main` the views and macros over them, as a cache file holds them:
    the relations the named queries read, as of now. The rows come from the cache when a
    reader would use it (it holds the last completed state), else from the Parquet
    views. Returns which."""
    con = duckdb.connect()
    configure(con)
    if cache_mod.attach_current(con, root, "cprec_cache") is None:
        source = "the cache"
    else:
        con.close()
        con = reader.open_parquet(root)  # the views, under the data root's read lock
        source = "the Parquet files"
    try:
        con.execute(
            f"ATTACH {sql_string(str(path))} AS cprec_out "
            f"(STORAGE_VERSION '{DB_FILE_STORAGE_VERSION}')"
        )
        con.execute("CREATE SCHEMA cprec_out.cache")
        with data_errors(root):
            for name in TABLES:
                con.execute(f"CREATE TABLE cprec_out.cache.{name} AS SELECT * FROM {name}")
            for rel in catalog().relations:
                # the stored rows: the cache's, or computed over the views
                args = f"({defaults(rel)})" if rel.params else ""
                con.execute(
                    f"CREATE TABLE cprec_out.cache.{rel.name} AS SELECT * FROM {rel.name}{args}"
                )
        con.execute("CHECKPOINT cprec_out")
        con.close()
        # the views and macros go into the file, over its own tables (a connection of
        # its own: none of the reader's objects is at hand there)
        with duckdb.connect(str(path)) as out:
            for sql in reader_sql("cache", catalog(), temp=False):
                out.execute(sql)
            out.execute("CHECKPOINT")
    except duckdb.Error as exc:
        raise UserError(f"cannot write {path}: {first_line(exc)}") from None
    finally:
        con.close()
    return source


def _open_database_file(path: Path, *, shown: Path | None = None) -> duckdb.DuckDBPyConnection:
    """`path` opened read-write; a new file gets the storage format DB_FILE_STORAGE_VERSION
    (an existing one keeps its own)."""
    config = {"storage_compatibility_version": DB_FILE_STORAGE_VERSION}
    try:
        return duckdb.connect(str(path), config=config)
    except duckdb.Error as exc:
        raise UserError(
            f"cannot open {shown or path} as a DuckDB database: {first_line(exc)}"
        ) from None


def _write_views(con: duckdb.DuckDBPyConnection, root: DataRoot) -> None:
    """Create the views over `root` in `con`'s database, checkpoint and close it."""
    try:
        root.attach(con)  # to check the files now; the file's reader needs httpfs for S3
        with data_errors(root):
            create_parquet_views(con, root)
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _storage_version(con: duckdb.DuckDBPyConnection) -> str | None:
    """The storage format of `con`'s database as DuckDB tags it: the oldest DuckDB version
    that opens it plus "+", e.g. `v1.0.0+`. None before DuckDB 1.2, which has no such tag
    (and writes storage version 64 only)."""
    rel = con.execute("SELECT * FROM duckdb_databases() WHERE database_name = current_database()")
    row = dict(zip([d[0] for d in rel.description], rel.fetchone(), strict=True))
    return (row.get("tags") or {}).get("storage_version")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def _check_nothing_lost(path: Path, new: Path, version: str | None) -> None:
    """Raise UserError if the existing database `path` holds an object `new` does not
    (cprec's own tables and views may change form: views become tables, raw.* goes)."""
    objects = """
        SELECT 'table', schema_name, table_name FROM duckdb_tables()
            WHERE database_name = $db
        UNION ALL SELECT 'view', schema_name, view_name FROM duckdb_views()
            WHERE database_name = $db AND NOT internal
        UNION ALL SELECT 'macro', schema_name, function_name
            FROM duckdb_functions()
            WHERE database_name = $db AND function_type IN ('macro', 'table_macro')
            AND NOT internal
        UNION ALL SELECT 'sequence', schema_name, sequence_name
            FROM duckdb_sequences() WHERE database_name = $db
        UNION ALL SELECT 'type', schema_name, type_name FROM duckdb_types()
            WHERE database_name = $db AND NOT internal
    """
    with duckdb.connect() as con:
        try:
            con.execute(f"ATTACH {sql_string(str(path))} AS old (READ_ONLY)")
        except duckdb.Error as exc:
            raise UserError(f"cannot open {path} as a DuckDB database: {first_line(exc)}") from None
        con.execute(f"ATTACH {sql_string(str(new))} AS new (READ_ONLY)")
        kept = set(con.execute(objects, {"db": "new"}).fetchall())
        old = set(con.execute(objects, {"db": "old"}).fetchall())
    ours = _cprec_relations()
    extra = sorted(
        f"{kind} {schema}.{name}"
        for kind, schema, name in old - kept
        if not (kind in ("table", "view") and (schema, name) in ours)
    )
    if extra:
        why = (
            f"opens only in DuckDB {version.removeprefix('v')} (a file's storage format "
            "cannot be lowered) and "
            if version and _version_key(version) > _version_key(DB_FILE_STORAGE_VERSION)
            else ""
        )
        raise UserError(
            f"{path} {why}holds what cprec does not write "
            f"({', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''}): move it away "
            "or pass another path"
        )


def _remove_database_file(path: Path) -> None:
    for file in (path, path.with_name(path.name + ".wal")):
        file.unlink(missing_ok=True)


def run_query(
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    pipelines: Sequence[str] = (),
    now: datetime | None = None,
    deploy_stages: Sequence[str] = (),
    data_root: str | Path | DataRoot | None = None,
    stream: bool = False,
) -> pa.Table | pa.RecordBatchReader:
    """Run a named query with its parameters bound; `data_root` only sharpens error messages.

    `deploy_stages`: GLOBs naming the deploy stages (empty = each pipeline's last stage
    holding a Deploy action, relations/deploy_stages.sql). `stream`: a reader of batches
    (the rows are fetched as it is read; read it inside `reader.data_errors`), not a
    table held whole in memory."""
    query = get_query(name)
    values = {
        "since": since,
        "until": until,
        "pipelines": list(pipelines),
        "now": now or datetime.now(UTC),
        "deploy_stages": list(deploy_stages),
    }
    params = {k: values[k] for k in query.parameters}
    with data_errors(data_root):
        if stream:
            return con.sql(query.sql, params=params).to_arrow_reader(STREAM_BATCH_ROWS)
        return con.sql(query.sql, params=params).to_arrow_table()


def run_sql(
    con: duckdb.DuckDBPyConnection, sql: str, *, data_root: str | Path | DataRoot | None = None
) -> pa.Table | None:
    """Run ad-hoc SQL over the views; any DuckDB error is the user's (one line)."""
    if not sql.strip():
        raise UserError("empty SQL")
    with data_errors(data_root):
        try:
            rel = con.sql(sql)
            return None if rel is None else rel.to_arrow_table()
        except (duckdb.IOException, duckdb.InvalidInputException):
            raise  # data_errors names the file
        except duckdb.Error as exc:
            hint = ""
            if "raw." in sql.lower() and isinstance(exc, duckdb.CatalogException):
                hint = " (raw.* views read the Parquet files: add --no-cache)"
            raise UserError(f"SQL: {first_line(exc)}{hint}") from None


def _is_duckdb_file(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(12)[8:12] == b"DUCK"  # the storage header's magic
