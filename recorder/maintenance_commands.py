"""`cprec compact` and `cprec cache`: keep a long-lived data root fast to query."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click
import duckdb

from queries import cache
from recorder.compact import compact
from recorder.errors import UserError
from recorder.options import data_option
from recorder.schemas import TABLES


def _root(data: Path) -> Path:
    if not data.is_dir():
        raise UserError(f"data root {data} is not a directory (pass --data / CPREC_DATA)")
    return data


@click.command("compact")
@click.option(
    "--min-age-days",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Only partitions whose day ended more than this many days ago.",
)
@click.option(
    "--table",
    "tables",
    multiple=True,
    type=click.Choice(list(TABLES)),
    help="Only this table (repeatable; default all).",
)
@data_option
def compact_cmd(min_age_days: int, tables: tuple[str, ...], data: Path) -> None:
    """Merge each closed partition's files into one, dropping superseded rows."""
    root = _root(data)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    result = compact(
        root,
        tables=list(tables) or None,
        min_age_days=min_age_days,
        today=datetime.now(UTC).date(),
    )
    click.echo(
        f"compacted {result.partitions} partitions: {result.files_before} files -> "
        f"{result.files_after}, {result.rows_before} rows -> {result.rows_after} "
        f"({result.skipped_open} open partitions left alone)"
    )
    if result.partitions and cache.cache_path(root).exists():
        _refresh(root, written=result.written, removed=result.removed)


@click.command("cache")
@click.option("--rebuild", is_flag=True, help="Delete the cache and build it from scratch.")
@data_option
def cache_cmd(rebuild: bool, data: Path) -> None:
    """Build or refresh the local DuckDB cache that makes large queries fast."""
    root = _root(data)
    path = cache.cache_path(root)
    if rebuild:
        for p in path.parent.glob(path.name + "*"):  # the file and its WAL
            p.unlink()
    result = _refresh(root)
    total = sum(result.rows.values())
    click.echo(
        f"cache {path}: loaded {result.files_loaded} files, {result.files_gone} gone, "
        f"{result.partitions_reloaded} partitions reloaded; {total} rows in "
        f"{result.seconds:.1f} s"
    )


def _refresh(root: Path, **files) -> cache.RefreshResult:
    try:
        return cache.refresh(root, **files)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            cache.mark_stale(root, "busy during a refresh")
            raise UserError(
                f"the cache {cache.cache_path(root)} is in use by another process; "
                "queries read the Parquet files until `cprec cache` runs again"
            ) from None
        raise


COMMANDS: list[Callable] = [compact_cmd, cache_cmd]
