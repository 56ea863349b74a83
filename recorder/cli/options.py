"""Shared click options, so every command spells them the same way."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import click

from recorder.errors import UserError
from recorder.root import DataRoot

OUTPUT_FORMATS = ("table", "csv", "json", "jsonl", "parquet", "markdown")


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
        try:
            return DataRoot.of(value)
        except UserError as e:
            self.fail(e.message, param, ctx)


def data_option(f: Callable) -> Callable:
    """`--data` and `--cache-dir`: the command receives `data`, the DataRoot whose cache
    directory is the one `--cache-dir` chose (or its default)."""

    @functools.wraps(f)
    def run(*args, data: DataRoot, cache_dir: Path | None, **kwargs):
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
