"""The DuckDB query layer: deduplicated views over the Parquet tables and named queries.

    con = connect("data")                     # every view created, in memory
    named_queries()["stage-durations"]        # NamedQuery(name, description, sql)
    run_query(con, "stage-durations", since=datetime(2026, 1, 1, tzinfo=UTC))  # -> pyarrow.Table

Named queries are `sql/<name>.sql` (name = file stem, description = first `-- ` line)
with DuckDB named parameters: `$since`, `$until` (TIMESTAMPTZ or NULL = unbounded,
applied to the start time, until exclusive), `$pipelines` (list of GLOB patterns,
empty = all), `$now` (the time ages are measured to) and `$deploy_stages` (GLOBs of
deploy stage names, empty = the default rule of recorder/sql/_delivery.sql),
`$accounts` and `$regions` (GLOBs, empty = all; SELF_SELECTING), `$by` (cost's grouping)
and `$prices` (cost's prices: queries/cost.py). Values are always bound, never pasted into
the SQL.
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
from recorder.derive import defaults, expand, macro_sql
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

PARAMETERS = (
    "since", "until", "pipelines", "now", "deploy_stages", "accounts", "regions", "by", "prices",
)  # fmt: skip
# A query that takes these selects its rows itself, over every account and region: its
# connection is not narrowed (`narrow`), for its figures depend on rows it does not show
# (`cost`: the free minutes an account's pipelines share).
SELF_SELECTING = {"accounts", "regions"}
STREAM_BATCH_ROWS = 50_000  # rows per batch of a streamed result
_PARAM = re.compile(r"\$([A-Za-z_]\w*)")
_COMMENT = re.compile(r"--[^\n]*")


# The queries that list what happened, newest first, without bound (a year of 500 pipelines
# holds 1.17 M failed executions): `cprec query` shows their newest rows unless --limit says.
DEFAULT_LIMITS = {"recent-failures": 50, "collection-health": 50}


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str

    @property
    def parameters(self) -> set[str]:
        return set(_PARAM.findall(_COMMENT.sub("", self.sql)))

    @property
    def default_limit(self) -> int | None:
        """Rows `cprec query` shows when no --limit is given (None: all)."""
        return DEFAULT_LIMITS.get(self.name)


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
    data_root: str | Path | DataRoot,
    *,
    cache: bool | None = None,
    accounts: Sequence[str] = (),
    regions: Sequence[str] = (),
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every view over `data_root` (recorder/reader.py).

    `cache`: None uses the local cache when it holds the last completed state, True
    requires it, False reads the Parquet files only. `accounts`, `regions`: GLOBs; when
    given, every table and relation holds only their rows (`narrow`).
    """
    con = reader.connect(DataRoot.of(data_root).existing(), cache=cache)
    narrow(con, accounts=accounts, regions=regions)
    return con


def narrow(
    con: duckdb.DuckDBPyConnection, *, accounts: Sequence[str] = (), regions: Sequence[str] = ()
) -> None:
    """Make every table and relation of `con` hold only the rows whose account id matches
    one of `accounts` and whose region matches one of `regions` (GLOBs; empty = any).

    Temporary objects named like the connection's own, which DuckDB finds first: each
    table's rows narrowed; each relation whose key holds the account and region
    (grain execution or pipeline: its rows depend only on inputs of their own account
    and region) its own rows narrowed, so the cache's stored rows still serve; the
    statistics per pipeline name, which add up every account and region, computed again
    over the narrowed relations, as a reader over the Parquet files computes them."""
    if not accounts and not regions:
        return
    if isinstance(con, reader.ParquetConnection):
        con.prepare(None)  # every view and macro over the files, to narrow
    (db,) = con.execute("SELECT current_database()").fetchall()[0]
    own = '"' + db.replace('"', '""') + '".main'
    where = " AND ".join(
        "(" + " OR ".join(f"{column} GLOB {sql_string(g)}" for g in globs) + ")"
        for column, globs in (("account_id", accounts), ("region", regions))
        if globs
    )
    statements = [
        f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {own}.{name} WHERE {where}"
        for name in TABLES
    ]
    relations = catalog().relations
    params = {rel.name: rel.params for rel in relations}

    def source(name: str) -> str:
        return f"{name}({', '.join(params[name])})" if params.get(name) else name

    for rel in relations:
        args = ", ".join(rel.params)
        if rel.grain == "name":
            body = expand(rel, source)
        else:
            body = f"SELECT * FROM {own}.{source(rel.name)} WHERE {where}"
        if rel.params:
            statements.append(f"CREATE OR REPLACE TEMP MACRO {rel.name}({args}) AS TABLE {body}")
        else:
            statements.append(f"CREATE OR REPLACE TEMP VIEW {rel.name} AS {body}")
    statements.append(macro_sql(catalog().library, temp=True))  # over the narrowed relations
    for statement in statements:
        con.execute(statement)


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
    accounts: Sequence[str] = (),
    regions: Sequence[str] = (),
    by: str = "pipeline",
    prices: dict | None = None,
    data_root: str | Path | DataRoot | None = None,
    stream: bool = False,
    limit: int | None = None,
) -> pa.Table | pa.RecordBatchReader:
    """Run a named query with its parameters bound; `data_root` only sharpens error messages.

    `deploy_stages`: GLOBs naming the deploy stages (empty = each pipeline's last stage
    holding a Deploy action, relations/deploy_stages.sql). `stream`: a reader of batches
    (the rows are fetched as it is read; read it inside `reader.data_errors`), not a
    table held whole in memory. `limit`: the first rows only, in the query's order.
    `accounts`, `regions`: bound to a SELF_SELECTING query (others are narrowed by
    `connect`). `by`, `prices`: cost's grouping (cost.BY) and prices (None: AWS's)."""
    from queries import cost

    query = get_query(name)
    if by not in cost.BY:
        raise UserError(f"cannot group by {by!r}; valid: {', '.join(cost.BY)}")
    values = {
        "since": since,
        "until": until,
        "pipelines": list(pipelines),
        "now": now or datetime.now(UTC),
        "deploy_stages": list(deploy_stages),
        "accounts": list(accounts),
        "regions": list(regions),
        "by": by,
    }
    if "prices" in query.parameters:
        with data_errors(data_root):
            values["prices"] = cost.aws_prices(con) if prices is None else prices
    params = {k: values[k] for k in query.parameters}
    with data_errors(data_root):
        rel = con.sql(query.sql, params=params)
        if limit is not None:
            rel = rel.limit(limit)  # DuckDB keeps the order of the query's ORDER BY
        if stream:
            return rel.to_arrow_reader(STREAM_BATCH_ROWS)
        return rel.to_arrow_table()


def recorded_clock(
    con: duckdb.DuckDBPyConnection, until: datetime | None = None
) -> datetime | None:
    """The time the recorded history reaches: the start of the last collection run that
    recorded something (succeeded or partial; everything that started before it was
    listed), or `until` when one started after it. None when no run is recorded.

    The named queries measure ages and the end of an open window to it (their `$now`, from
    the command line), not to the wall clock: a collector stopped for 16 days, or the demo's
    simulated clock, would otherwise give ages 16 days too long and a week's rate over 16
    days more than were recorded."""
    (last,) = con.execute(
        "SELECT max(started_at) FROM collection_runs WHERE status IN ('succeeded', 'partial')"
    ).fetchall()[0]
    if last is None:
        return None
    return min(last, until) if until is not None else last


def empty_hint(
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    pipelines: Sequence[str] = (),
    accounts: Sequence[str] = (),
    regions: Sequence[str] = (),
) -> str | None:
    """Why the named query `name` gave no rows, when the selection is why: nothing
    recorded, a filter that matches no recorded account, region or pipeline, filters that
    match nothing together, or a window in which no recorded execution of the selection
    started. None when it holds some (the query's answer is simply none).

    `con` must not be narrowed (`connect` without accounts and regions): the hint names
    what the filters could have matched."""
    taken = get_query(name).parameters
    pipelines = pipelines if "pipelines" in taken else ()
    since = since if "since" in taken else None
    until = until if "until" in taken else None
    (recorded,) = con.execute("SELECT count(*) FROM executions").fetchall()[0]
    if not recorded:
        return "nothing is recorded here yet: `cprec collect` records an account"
    filters = [
        ("--account", "account_id", "accounts", list(accounts)),
        ("--region", "region", "regions", list(regions)),
        ("--pipeline", "pipeline", "pipelines", list(pipelines)),
    ]
    for option, column, plural, globs in filters:
        for g in globs:
            matched, known, names = con.execute(
                f"SELECT count(*) FILTER (WHERE v GLOB $g), count(*), list(v ORDER BY v)[:3] "
                f"FROM (SELECT DISTINCT {column} AS v FROM executions)",
                {"g": g},
            ).fetchall()[0]
            if matched:
                continue
            listed = (
                ", ".join(names) if known <= 3
                else f'`cprec sql "SELECT DISTINCT {column} FROM executions"` lists them'
            )  # fmt: skip
            return f"{option} {g} matches none of the {known} recorded {plural} ({listed})"
    where = " AND ".join(
        f"pipeline_matches({column}, ${plural})" for _, column, plural, _ in filters
    )
    values = {plural: globs for _, _, plural, globs in filters}
    first, last, inside = con.execute(
        f"SELECT min(start_time), max(start_time), "
        f"count(*) FILTER (WHERE in_window(start_time, $since, $until)) "
        f"FROM executions WHERE {where}",
        {**values, "since": since, "until": until},
    ).fetchall()[0]
    if first is None:
        used = " and ".join(f"{o} {' '.join(g)}" for o, _, _, g in filters if g)
        return f"no recorded execution matches {used} together"
    if not inside:
        bounds = " ".join(
            f"{option} {bound:%Y-%m-%d %H:%M}"
            for option, bound in (("--since", since), ("--until", until))
            if bound is not None
        )
        return (
            f"the window ({bounds} UTC) holds no recorded execution: those recorded "
            f"started from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
        )
    return None


# Statements whose result is rows to show; the others (CREATE, INSERT, COPY, SET, ...)
# answer with a count or nothing, shown only when such a statement is run alone.
ROWS_STATEMENTS = frozenset({"SELECT", "EXPLAIN", "PRAGMA", "CALL", "EXECUTE", "MULTI"})


def run_sql(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    *,
    data_root: str | Path | DataRoot | None = None,
    one_result: bool = False,
) -> list[pa.Table]:
    """Run ad-hoc SQL over the views: one statement or several separated by `;`, in order.
    Returns the result of a statement run alone, else the results of the statements that
    return rows (ROWS_STATEMENTS), in order. `one_result`: refuse SQL with more than one of
    those before running anything (a CSV or JSON file holds one result).

    Every error of the SQL is one line worded one way, `SQL: <DuckDB's first line>`
    (`statement N of M: ` before it when there are several), the read-only cache's
    included; only a Parquet file that cannot be read is worded as the data's error,
    naming the file (reader.data_errors)."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise UserError(f"SQL: {first_line(exc)}") from None
    if not statements:
        raise UserError("SQL: empty SQL, nothing to run")
    several = len(statements) > 1
    shown = [i for i, s in enumerate(statements) if not several or s.type.name in ROWS_STATEMENTS]
    if one_result and len(shown) > 1:
        raise UserError(
            f"SQL: {len(shown)} of its statements return rows, and this format holds one "
            "result: run them one at a time, or show them all with --format table"
        )
    results = []
    with data_errors(data_root):
        for i, statement in enumerate(statements):
            try:
                rel = con.sql(statement.query)
                if i in shown and rel is not None:
                    results.append(rel.to_arrow_table())
            except duckdb.Error as exc:
                if _unreadable_data(con, exc, data_root):
                    raise  # data_errors names the file
                where = f"statement {i + 1} of {len(statements)}: " if several else ""
                hint = _sql_hint(statement.query, exc)
                raise UserError(f"SQL: {where}{first_line(exc)}{hint}") from None
    return results


def _unreadable_data(con, exc: duckdb.Error, data_root) -> bool:
    """Whether `exc` is about a Parquet file that cannot be read, not about the SQL: only
    a connection over the files reads them; DuckDB names the file, or one is unreadable."""
    if isinstance(exc, duckdb.OutOfMemoryException):
        return True  # data_errors words it (the memory limit)
    if not isinstance(con, reader.ParquetConnection):
        return False
    if not isinstance(exc, duckdb.IOException | duckdb.InvalidInputException):
        return False
    if ".parquet" in str(exc):
        return True
    return data_root is not None and bool(reader.unreadable_files(DataRoot.of(data_root)))


def _sql_hint(sql: str, exc: duckdb.Error) -> str:
    if "raw." in sql.lower() and isinstance(exc, duckdb.CatalogException):
        return " (raw.* views read the Parquet files: add --no-cache)"
    if "read-only mode" in str(exc):
        return " (the query cache is read-only: CREATE TEMP TABLE, or add --no-cache)"
    return ""


def _is_duckdb_file(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(12)[8:12] == b"DUCK"  # the storage header's magic
