"""Shared click options, so every command spells them the same way.

The CLI modules import only click and these light modules at load: `cprec --help` and
`--version` build every command, so a command imports what it needs (pyarrow, DuckDB,
boto3, Bokeh: a second between them) when it runs. tests/test_startup.py keeps it so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from recorder.errors import UserError

if TYPE_CHECKING:
    from recorder.root import DataRoot

OUTPUT_FORMATS = ("table", "csv", "json", "jsonl", "parquet", "markdown")
UNUSED_ROOT = "cprec.unused_root"  # ctx.meta: a group's --data is not converted (CommandGroup)


def _stack(*decorators: Callable) -> Callable:
    def apply(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


class RootParam(click.ParamType):
    """A local directory or an S3 location `s3://bucket/prefix`, as a DataRoot (with the
    default cache directory: data_option gives it the one of `--cache-dir`)."""

    name = "DIR|s3://BUCKET/PREFIX"

    def convert(self, value, param, ctx):
        if ctx is not None and ctx.meta.get(UNUSED_ROOT):
            return value  # a group's own --data, unused when a command follows it
        from recorder.root import DataRoot  # pyarrow: imported when a command runs

        try:
            return DataRoot.of(value)
        except UserError as e:
            self.fail(e.message, param, ctx)


class DecimalParam(click.ParamType):
    """A non-negative decimal number, kept exact (0.002 is 0.002, not a binary double)."""

    name = "decimal"

    def convert(self, value, param, ctx):
        from decimal import Decimal, InvalidOperation

        try:
            number = Decimal(value) if not isinstance(value, Decimal) else value
        except InvalidOperation:
            self.fail(f"{value!r} is not a number, such as 0.002", param, ctx)
        if not number.is_finite() or number < 0:
            self.fail(f"{value!r} is not a number of 0 or more, such as 0.002", param, ctx)
        return number


class LazyChoice(click.Choice):
    """A choice among names that a slow module owns (the tables: recorder.schemas, which
    imports pyarrow): read when click first needs them, to parse the command line or show
    the command's own --help, not when `cprec --help` builds the command."""

    def __init__(self, choices: Callable[[], Sequence[str]]) -> None:
        self._choices = choices
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self._choices())

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:
        pass  # click.Choice.__init__ assigns the (empty) tuple; the callable stays the source


class LazyDefault(click.Option):
    """An option whose default (a callable) a slow module owns: called when click needs
    the value, to run the command or show it in its --help as click shows a plain
    default (click would print "(dynamic)" instead)."""

    def get_default(self, ctx: click.Context, call: bool = True):
        return super().get_default(ctx, call=True)


def data_option(f: Callable) -> Callable:
    """`--data` and `--cache-dir`: the command receives `data`, the DataRoot whose cache
    directory is the one `--cache-dir` chose (or its default)."""

    @functools.wraps(f)
    def run(*args, data: DataRoot, cache_dir: Path | None, **kwargs):
        ctx = click.get_current_context(silent=True)
        if ctx is not None and ctx.invoked_subcommand is not None:
            return f(*args, data=None, **kwargs)  # CommandGroup: the command's own --data
        from recorder.root import DataRoot

        return f(*args, data=DataRoot.of(data, cache_dir=cache_dir), **kwargs)

    return _stack(
        click.option(
            "--data",
            "data",
            type=RootParam(),
            envvar="CPREC_DATA",
            default="./data",
            show_default=True,
            show_envvar=True,
            help="Data root holding the Parquet tables: a directory or s3://bucket/prefix.",
        ),
        click.option(
            "--cache-dir",
            type=click.Path(file_okay=False, path_type=Path),
            envvar="CPREC_CACHE_DIR",
            show_envvar=True,
            help="Directory of the local query cache. Default: <data>/.cache for a "
            "directory, ~/.cache/cprec/<bucket>-<hash> for S3.",
        ),
    )(run)


aws_options = _stack(
    click.option(
        "--profile",
        envvar="CPREC_PROFILE",
        show_envvar=True,
        help="AWS profile (boto3 default chain).",
    ),
    click.option(
        "--endpoint-url",
        envvar="CPREC_ENDPOINT_URL",
        show_envvar=True,
        help="Endpoint for the CodePipeline and STS calls, e.g. the simulator's "
        "http://127.0.0.1:4566.",
    ),
)

output_options = _stack(
    click.option(
        "--format",
        "fmt",
        type=click.Choice(OUTPUT_FORMATS),
        default="table",
        show_default=True,
        help="Output format.",
    ),
    click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write to FILE instead of standard output.",
    ),
)

cache_option = click.option(
    "--cache/--no-cache",
    "use_cache",
    default=None,
    help="Read the local cache (`cprec cache`) or only the Parquet files. "
    "Default: the cache when one exists and is fresh.",
)


class CommandGroup(click.Group):
    """A command that may be followed by a command of its own (`export` and `export
    otel`): when one follows, the group's own options are not used, and its --data is
    left unconverted (RootParam), so `export otel --help` imports no pyarrow."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[UNUSED_ROOT] = bool(set(args) & set(self.commands))
        try:
            return super().parse_args(ctx, args)
        finally:
            ctx.meta.pop(UNUSED_ROOT, None)
