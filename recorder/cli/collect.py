"""`cprec collect`: the collector on the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from recorder.cli.options import aws_options, data_option
from recorder.errors import EXIT_LOCKED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, UserError
from recorder.timeparse import parse_bound

EXIT_CODES_HELP = f"""\b
Exit codes:
  {EXIT_OK}   every selected pipeline was recorded (a pipeline deleted mid-run is a warning)
  {EXIT_PARTIAL}   some pipelines, regions or accounts failed; the others were written
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
    "--role-arn",
    "role_arns",
    multiple=True,
    metavar="ARN",
    envvar="CPREC_ROLE_ARN",
    show_envvar=True,
    help="Record the account of this IAM role, assumed with STS AssumeRole (repeatable; "
    "the variable takes ARNs separated by spaces). Default: the credentials' own account.",
)
@click.option(
    "--role-arn-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CPREC_ROLE_ARN_FILE",
    show_envvar=True,
    help="Role ARNs to record, one a line (blank lines and # comments skipped).",
)
@click.option(
    "--external-id",
    metavar="ID",
    envvar="CPREC_EXTERNAL_ID",
    show_envvar=True,
    help="ExternalId passed with every AssumeRole (the member roles' trust policy asks for it).",
)
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
    "--max-duration",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    envvar="CPREC_MAX_DURATION",
    show_envvar=True,
    help="Stop fetching after SECONDS: what was fetched is written whole, the rest is left "
    "to the next run (exit 0). For schedulers that kill a job at a time limit.",
)
@click.option(
    "--plan",
    "plan_only",
    is_flag=True,
    help="Write nothing: list what a run would fetch and print its calls and time at "
    "the --plan-rate rates (from the listings alone: a fraction of the run's calls).",
)
@click.option(
    "--plan-rate",
    "plan_rates",
    type=click.FloatRange(min=0, min_open=True),
    multiple=True,
    metavar="R",
    help="Requests/s per operation to estimate --plan's time at (repeatable) [default: 5 and 20].",
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
    "--cache/--no-cache",
    "build_cache",
    default=True,
    show_default=True,
    envvar="CPREC_CACHE",
    show_envvar=True,
    help="Build the local query cache (`cprec cache`) at the end of the run if the data "
    "root has none (a directory; for S3 the readers build theirs). An existing cache is "
    "refreshed with what the run wrote either way.",
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
    data,
    regions,
    profile,
    endpoint_url,
    role_arns,
    role_arn_file,
    external_id,
    include,
    exclude,
    since,
    max_duration,
    plan_only,
    plan_rates,
    workers,
    build_cache,
    quiet,
    log_format,
) -> None:
    """Record pipeline state and execution history as Parquet."""
    # boto3, pyarrow, DuckDB: imported when the command runs (options.py)
    from recorder.accounts import read_role_file
    from recorder.collect import collect
    from recorder.config import CollectConfig
    from recorder.plan import plan

    if role_arn_file is not None:
        listed = read_role_file(role_arn_file)
        if not listed:  # else an emptied file would record the caller's own account instead
            raise UserError(f"--role-arn-file {role_arn_file} names no role")
        role_arns = (*role_arns, *listed)
    # One configuration for the plan and the run: --plan estimates what these flags collect.
    config = CollectConfig(
        regions=regions,
        profile=profile,
        endpoint_url=endpoint_url,
        role_arns=role_arns,
        external_id=external_id,
        include=include,
        exclude=exclude,
        since=parse_bound(since) if since else None,
        workers=workers,
        max_duration=max_duration,
        build_cache=build_cache,
        quiet=quiet,
        log_format=log_format,
    )
    if plan_only:
        click.echo(plan(data, config).text(plan_rates or (5.0, 20.0)))
        return
    if plan_rates:  # else a forgotten --plan would start the backfill it meant to plan
        raise UserError("--plan-rate is for --plan: add --plan, or drop --plan-rate")
    sys.exit(collect(data, config).exit_code)
