"""Shared click options, so every command spells them the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

OUTPUT_FORMATS = ("table", "csv", "json", "jsonl", "parquet", "markdown")


def _stack(*decorators: Callable) -> Callable:
    def apply(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


data_option = click.option(
    "--data",
    "data",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CPREC_DATA",
    default="./data",
    show_default=True,
    show_envvar=True,
    help="Data root holding the Parquet tables.",
)

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
