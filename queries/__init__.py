"""The DuckDB query layer: deduplicated views over the Parquet tables and named queries.

    con = connect("data")                     # every view created, in memory
    named_queries()["stage-durations"]        # NamedQuery(name, description, sql)
    run_query(con, "stage-durations", since=datetime(2026, 1, 1, tzinfo=UTC))  # -> pyarrow.Table

Named queries are `sql/<name>.sql` (name = file stem, description = first `-- ` line)
with DuckDB named parameters: `$since`, `$until` (TIMESTAMPTZ or NULL = unbounded,
applied to the start time, until exclusive), `$pipelines` (list of GLOB patterns,
empty = all) and `$now` (the time ages are measured to). Values are always bound,
never pasted into the SQL.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from recorder import reader
from recorder.errors import UserError, first_line
from recorder.reader import data_errors
from recorder.views import create_parquet_views

__all__ = [
    "NamedQuery",
    "connect",
    "get_query",
    "named_queries",
    "run_query",
    "run_sql",
    "write_database",
]

PARAMETERS = ("since", "until", "pipelines", "now")
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


def connect(data_root: str | Path, *, cache: bool | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every view over `data_root` (recorder/reader.py).

    `cache`: None uses the local cache when it holds the last completed state, True
    requires it, False reads the Parquet files only.
    """
    return reader.connect(_existing_root(data_root), cache=cache)


def write_database(path: str | Path, data_root: str | Path) -> None:
    """Write a DuckDB database file whose views read the Parquet files under `data_root`."""
    root = _existing_root(data_root)
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"{path.parent} is not a directory")
    if path.exists() and not _is_duckdb_file(path):
        raise UserError(f"{path} exists and is not a DuckDB database file")
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise UserError(f"cannot open {path} as a DuckDB database: {first_line(exc)}") from None
    try:
        with data_errors(root):
            create_parquet_views(con, root)
        con.execute("CHECKPOINT")
    finally:
        con.close()


def run_query(
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    pipelines: Sequence[str] = (),
    now: datetime | None = None,
    data_root: str | Path | None = None,
) -> pa.Table:
    """Run a named query with its parameters bound; `data_root` only sharpens error messages."""
    query = get_query(name)
    values = {
        "since": since,
        "until": until,
        "pipelines": list(pipelines),
        "now": now or datetime.now(UTC),
    }
    params = {k: values[k] for k in query.parameters}
    with data_errors(data_root):
        return con.sql(query.sql, params=params).to_arrow_table()


def run_sql(
    con: duckdb.DuckDBPyConnection, sql: str, *, data_root: str | Path | None = None
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


def _existing_root(data_root: str | Path) -> Path:
    root = Path(data_root)
    if not root.is_dir():
        raise UserError(
            f"data root {root} is not a directory (run `cprec collect` or `cprec demo`, "
            "or pass --data / CPREC_DATA)"
        )
    return root


def _is_duckdb_file(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(12)[8:12] == b"DUCK"  # the storage header's magic
