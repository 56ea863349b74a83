"""How every reader (the query layer, the collector's known state) gets its relations.

`connect(root)` gives a DuckDB connection whose views (recorder/views.py) read the
query cache when it holds the last completed state, else the Parquet files. A
connection over the files holds the data root's read lock (recorder/lock.py) for as
long as it lives, so compaction never deletes a file it listed.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from recorder import cache as cache_mod
from recorder import s3
from recorder.errors import UserError, first_line
from recorder.layout import as_root, list_files, parquet_metadata
from recorder.lock import read_lock
from recorder.views import configure, create_parquet_views


def connect(
    root: str | Path, *, cache: bool | None = None, tables: tuple[str, ...] | None = None
) -> duckdb.DuckDBPyConnection:
    """A connection with every view over `root`.

    `cache`: None reads the cache when it is usable, True requires it (one line
    saying why not), False reads the Parquet files only. `tables`: over the files, only
    these tables' views (each view binds its files: over S3 a request per file and
    statement), for a reader that needs no other, such as the collector's cursor.
    """
    root = as_root(root)
    if cache is not False:
        con, why = cache_mod.open_reader(root)
        if con is not None:
            return con
        if cache:
            raise UserError(f"cannot use the cache under {root}: {why}")
    return open_parquet(root, tables)


def open_parquet(root: Path, tables: tuple[str, ...] | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    configure(con)
    if s3.is_s3(root):
        s3.attach(con)
    read_lock(root, con)
    with data_errors(root):
        create_parquet_views(con, root, tables)
    return con


class data_errors:
    """Turn DuckDB's errors about unreadable Parquet into one line naming the file."""

    def __init__(self, root: str | Path | None):
        self.root = as_root(root) if root is not None else None

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or not isinstance(exc, duckdb.IOException | duckdb.InvalidInputException):
            return False
        message = first_line(exc)
        if ".parquet" not in message and self.root is not None:
            bad = unreadable_files(self.root)
            if bad:
                message = f"{message} (unreadable: {', '.join(map(str, bad[:3]))})"
        raise UserError(message) from None


def unreadable_files(root: Path) -> list[Path]:
    bad = []
    for files in list_files(root).values():
        for path in sorted(files):
            try:
                parquet_metadata(path)
            except Exception:  # noqa: BLE001 - any failure means DuckDB cannot read it either
                bad.append(path)
    return bad
