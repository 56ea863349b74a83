"""How every reader (the query layer, the collector's known state) gets its relations.

`connect(root)` gives a DuckDB connection whose views (recorder/views.py) read the
query cache when it holds the last completed state, else the Parquet files. A
connection over the files holds the data root's read lock (recorder/lock.py) for as
long as it lives, so compaction never deletes a file it listed.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from recorder import cache as cache_mod
from recorder.errors import UserError, first_line
from recorder.layout import list_files
from recorder.root import DataRoot
from recorder.views import (
    MEMORY_LIMIT_ENV,
    Pending,
    configure,
    parquet_objects,
)


def connect(
    root: str | Path | DataRoot,
    *,
    cache: bool | None = None,
    tables: tuple[str, ...] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A connection with every view over `root`.

    `cache`: None reads the cache when it is usable, True requires it (one line
    saying why not), False reads the Parquet files only. `tables`: over the files, only
    these tables' views (each view binds its files: over S3 a request per file and
    statement), for a reader that needs no other, such as the collector's cursor.
    """
    root = DataRoot.of(root)
    if cache is not False:
        con, why = cache_mod.open_reader(root)
        if con is not None:
            return con
        if cache:
            raise UserError(f"cannot use the cache under {root}: {why}")
    return open_parquet(root, tables)


def open_parquet(root: DataRoot, tables: tuple[str, ...] | None = None) -> ParquetConnection:
    """A connection over the Parquet files of `root` whose views and macros are created
    as statements first name them (views.Pending); `tables`: those tables' views now."""
    con = duckdb.connect()
    configure(con, files=True)
    root.attach(con)
    root.read_lock(con)
    lazy = ParquetConnection(con, root)
    if tables is not None:
        lazy.prepare(" ".join(tables))
    return lazy


class ParquetConnection:
    """A DuckDB connection over the Parquet files that creates what a statement reads just
    before running it (views.Pending). Everything else is DuckDB's connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, root: DataRoot):
        self._con = con
        self._root = root
        self._pending = Pending(parquet_objects(con, root))

    def prepare(self, text: str | None) -> None:
        """Create what `text` names (None: every view and macro)."""
        with data_errors(self._root):
            self._pending.ensure(text)

    def sql(self, query: str, *args, **kwargs):
        self.prepare(query)
        return self._con.sql(query, *args, **kwargs)

    query = sql

    def execute(self, query: str, *args, **kwargs):
        self.prepare(query)
        self._con.execute(query, *args, **kwargs)
        return self

    def __getattr__(self, name: str):
        return getattr(self._con, name)

    def __enter__(self) -> ParquetConnection:
        return self

    def __exit__(self, *exc) -> None:
        self._con.close()


class data_errors:
    """Turn DuckDB's errors about unreadable Parquet into one line naming the file."""

    def __init__(self, root: str | Path | DataRoot | None):
        self.root = DataRoot.of(root) if root is not None else None

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, duckdb.OutOfMemoryException):
            limit = os.environ.get(MEMORY_LIMIT_ENV)
            raise UserError(
                f"DuckDB needs more memory than its {limit or 'default'} limit for this: raise "
                f"--memory-limit ({MEMORY_LIMIT_ENV}), or build the cache (`cprec cache`)"
            ) from None
        if exc is None or not isinstance(exc, duckdb.IOException | duckdb.InvalidInputException):
            return False
        message = first_line(exc)
        if ".parquet" not in message and self.root is not None:
            bad = unreadable_files(self.root)
            if bad:
                message = f"{message} (unreadable: {', '.join(map(str, bad[:3]))})"
        raise UserError(message) from None


def unreadable_files(root: DataRoot) -> list[Path]:
    bad = []
    for files in list_files(root).values():
        for path in sorted(files):
            try:
                root.parquet_metadata(path)
            except Exception:  # noqa: BLE001 - any failure means DuckDB cannot read it either
                bad.append(path)
    return bad
