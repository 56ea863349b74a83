"""`cprec watch`: alerts over the recorded state and history (queries/watch.py finds what
holds, recorder/watch.py remembers and delivers)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from recorder.cli.options import aws_options, cache_option, data_option
from recorder.errors import (
    EXIT_FIRING,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    UserError,
)
from recorder.timeparse import parse_bound

if TYPE_CHECKING:
    from recorder.root import DataRoot

EXIT_CODES_HELP = f"""\b
Exit codes:
  {EXIT_OK}   nothing fires
  {EXIT_FIRING}   alerts fire (new, repeated or still firing)
  {EXIT_PARTIAL}   a delivery failed (one line each); its messages are kept and sent next run
  {EXIT_USAGE}   bad input (rules file, flag, data root)
  {EXIT_LOCKED}  another watch holds the data root's watch lock; nothing was done
"""


@click.command(
    "watch",
    epilog=EXIT_CODES_HELP,
    short_help="Alert on what needs history (stuck runs, waiting approvals).",
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CPREC_WATCH_RULES",
    show_envvar=True,
    help="Rules file (TOML) over the defaults (`--default-rules` prints them).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "jsonl"]),
    default="text",
    show_default=True,
    help="Events on stdout: one line each, or one JSON object each.",
)
@click.option(
    "--webhook",
    metavar="URL",
    envvar="CPREC_WEBHOOK_URL",
    show_envvar=True,
    help="Also POST each event to this Slack-compatible incoming webhook.",
)
@click.option(
    "--sns-topic",
    metavar="ARN",
    envvar="CPREC_SNS_TOPIC",
    show_envvar=True,
    help="Also publish each event to this SNS topic.",
)
@click.option(
    "--collect",
    "collect_first",
    is_flag=True,
    help="Run `cprec collect` first (with --region, --profile, --endpoint-url).",
)
@click.option(
    "--region",
    "regions",
    multiple=True,
    envvar="CPREC_REGION",
    show_envvar=True,
    help="With --collect: AWS region (repeatable).",
)
@aws_options
@click.option(
    "--now",
    metavar="TIME",
    help="Measure ages to this ISO time instead of each pipeline's recorded clock (the "
    "start of the last collection run that read it): to replay a moment.",
)
@click.option("--default-rules", is_flag=True, help="Print the default rules file and exit.")
@cache_option
@data_option
def watch_cmd(
    rules_file: Path | None,
    fmt: str,
    webhook: str | None,
    sns_topic: str | None,
    collect_first: bool,
    regions: tuple[str, ...],
    profile: str | None,
    endpoint_url: str | None,
    now: str | None,
    default_rules: bool,
    use_cache: bool | None,
    data: DataRoot,
) -> None:
    """Alert on what needs history: waiting approvals, long or stuck runs, failure
    streaks, pipelines that stopped deploying, disabled transitions."""
    # heavy modules here, not at import: `cprec --help` stays fast
    import queries
    from queries.watch import default_rules_text, evaluate, load_rules
    from recorder import watch

    if default_rules:
        click.echo(default_rules_text(), nl=False)
        return
    rules = load_rules(rules_file)  # a bad file fails before anything is collected or sent
    at = parse_bound(now, name="--now") if now else None
    sinks: list = []
    if webhook:
        sinks.append(watch.Webhook(webhook))
    if sns_topic:
        sinks.append(watch.Sns(sns_topic))
    if collect_first:
        _collect(data, regions, profile, endpoint_url)
    con = queries.connect(data, cache=use_cache)
    rows, clocks = evaluate(con, rules, now=at, data_root=data)
    con.close()
    outcome = watch.run(data.existing(), rows, clocks, sinks)
    for event in outcome.events:
        if fmt == "jsonl":
            click.echo(json.dumps(event.record(), sort_keys=True))
        else:
            click.echo(event.text)
    for doubt in outcome.in_doubt:
        click.echo(f"Warning: a crash interrupted this send, not repeated: {doubt}", err=True)
    if outcome.pending and not outcome.errors:
        click.echo(
            f"Warning: {outcome.pending} message(s) wait for a sink not given this run "
            "(--webhook, --sns-topic)",
            err=True,
        )
    *earlier, last = outcome.errors or [None]
    for error in earlier:
        click.echo(f"Error: {error}", err=True)
    if last is not None:
        raise watch.DeliveryError(last)
    sys.exit(outcome.exit_code)


def _collect(data: DataRoot, regions, profile, endpoint_url) -> None:
    from recorder.collect import collect
    from recorder.config import CollectConfig

    result = collect(
        data, CollectConfig(regions=regions, profile=profile, endpoint_url=endpoint_url, quiet=True)
    )
    if result.exit_code not in (EXIT_OK, EXIT_PARTIAL):
        raise UserError(f"collection failed (exit {result.exit_code}); nothing was watched")
