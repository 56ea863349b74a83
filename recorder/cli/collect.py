"""`cprec collect`: the collector on the command line."""

from __future__ import annotations

import sys

import click

from recorder.cli.options import aws_options, data_option
from recorder.collect import collect
from recorder.errors import EXIT_LOCKED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from recorder.timeparse import parse_bound

EXIT_CODES_HELP = f"""\b
Exit codes:
  {EXIT_OK}   every selected pipeline was recorded (a pipeline deleted mid-run is a warning)
  {EXIT_PARTIAL}   some pipelines or regions failed; the others were written
  {EXIT_USAGE}   usage or configuration error (bad flag, no region, no credentials)
  {EXIT_LOCKED}  another collector holds the data root's lock; nothing was done
"""


@click.command("collect", epilog=EXIT_CODES_HELP)
@data_option
@click.option(
    "--region",
    "regions",
    multiple=True,
    envvar="CPREC_REGION",
    show_envvar=True,
    help="AWS region (repeatable; default: the AWS config's region).",
)
@aws_options
@click.option(
    "--pipeline",
    "include",
    multiple=True,
    metavar="GLOB",
    envvar="CPREC_PIPELINE",
    show_envvar=True,
    help="Only pipelines matching GLOB (repeatable).",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="GLOB",
    envvar="CPREC_EXCLUDE",
    show_envvar=True,
    help="Skip pipelines matching GLOB (repeatable).",
)
@click.option(
    "--since",
    metavar="DATE|30d",
    envvar="CPREC_SINCE",
    show_envvar=True,
    help="Backfill lower bound for pipelines with no recorded history [default: 12 months].",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    envvar="CPREC_WORKERS",
    show_envvar=True,
    help="Pipelines collected in parallel.",
)
@click.option(
    "--quiet", is_flag=True, envvar="CPREC_QUIET", show_envvar=True, help="Print errors only."
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    envvar="CPREC_LOG_FORMAT",
    show_envvar=True,
    help="Log lines as text or one JSON object per line.",
)
def collect_command(
    data, regions, profile, endpoint_url, include, exclude, since, workers, quiet, log_format
) -> None:
    """Record pipeline state and execution history as Parquet."""
    result = collect(
        data,
        regions=list(regions) or None,
        profile=profile,
        endpoint_url=endpoint_url,
        include=include,
        exclude=exclude,
        since=parse_bound(since) if since else None,
        workers=workers,
        quiet=quiet,
        log_format=log_format,
    )
    sys.exit(result.exit_code)
