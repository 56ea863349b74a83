"""`cprec compact` and `cprec cache`: keep a long-lived data root fast to query."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click

from recorder.cli.options import LazyChoice, LazyDefault, data_option

if TYPE_CHECKING:
    from recorder.root import DataRoot


def _tables() -> list[str]:
    from recorder.schemas import TABLES  # pyarrow: imported when needed (options.py)

    return list(TABLES)


def _grace_minutes() -> int:
    from recorder.compact import GRACE

    return int(GRACE.total_seconds() // 60)


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
    type=LazyChoice(_tables),
    help="Only this table (repeatable; default all).",
)
@click.option(
    "--grace-minutes",
    cls=LazyDefault,
    type=click.IntRange(min=0),
    default=_grace_minutes,
    show_default=True,
    help="Keep replaced files this long for readers outside cprec (DuckDB CLI, Athena).",
)
@data_option
def compact_cmd(
    min_age_days: int, tables: tuple[str, ...], grace_minutes: int, data: DataRoot
) -> None:
    """Merge each closed partition's files into one.

    Superseded rows are dropped; the replaced files are deleted after the grace
    period, when no query is reading them.
    """
    from recorder.compact import compact

    root = data.existing()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    now = datetime.now(UTC)
    result = compact(
        root,
        tables=list(tables) or None,
        min_age_days=min_age_days,
        today=now.date(),
        grace=timedelta(minutes=grace_minutes),
        now=now,
    )
    click.echo(
        f"compacted {count(result.partitions, 'partition')}: "
        f"{count(result.files_before, 'file')} -> {result.files_after}, "
        f"{count(result.rows_before, 'row')} -> {result.rows_after} "
        f"({count(result.skipped_open, 'open partition')} left alone); "
        f"{count(len(result.removed), 'replaced file')} removed, "
        f"{result.waiting} kept for readers"
    )


@click.command("cache")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Build the cache from scratch, then replace the old one with it "
    "(which serves queries until then and stays if the build fails).",
)
@data_option
def cache_cmd(rebuild: bool, data: DataRoot) -> None:
    """Build or refresh the query cache that makes queries fast."""
    from recorder import cache

    root = data.existing()
    result = cache.build(root, rebuild=rebuild)
    total = sum(result.rows.values())
    click.echo(
        f"cache {cache.cache_path(root)}: loaded {count(result.files_loaded, 'file')}, "
        f"{result.files_gone} gone, {count(result.partitions_reloaded, 'partition')} reloaded; "
        f"{count(total, 'row')} in {result.seconds:.1f} s"
    )


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


COMMANDS: list[Callable] = [compact_cmd, cache_cmd]
