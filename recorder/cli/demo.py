"""`cprec demo`: record a simulated account twice and show what the query layer answers.

Nothing here talks to AWS: the simulated account runs in this process behind a local
endpoint, and the collector is pointed at it. If no AWS credentials are configured,
dummy ones are set in this process's environment only (botocore signs every request).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import click

import queries
from queries.output import write_result
from recorder.cli.options import data_option
from recorder.cli.report import write_html
from recorder.errors import UserError
from recorder.root import DataRoot
from recorder.timeparse import parse_bound

REGION = "us-east-1"
NATURAL_WIDTH = 1_000


def midnight_utc() -> datetime:
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, tzinfo=UTC)


def ensure_credentials() -> bool:
    """Set dummy credentials for the local simulator unless some are configured; True if set."""
    import boto3

    if boto3.Session().get_credentials() is not None:
        return False
    os.environ["AWS_ACCESS_KEY_ID"] = "demo"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "demo"
    return True


def _collect(data: DataRoot, url: str, now: datetime, label: str) -> int:
    from recorder.collect import collect
    from recorder.config import CollectConfig

    click.echo(f"{label} at {now:%Y-%m-%d %H:%M} UTC…", err=True)
    started = time.monotonic()
    result = collect(data, CollectConfig(regions=(REGION,), endpoint_url=url, now=now))
    rows = sum(result.rows_written.values())
    note = "" if result.exit_code == 0 else f" (exit {result.exit_code}: some pipelines failed)"
    click.echo(f"  {rows} rows written in {time.monotonic() - started:.1f} s{note}", err=True)
    return rows


@click.command("demo")
@click.option("--pipelines", default=12, show_default=True, help="Simulated pipelines.")
@click.option("--days", default=30, show_default=True, help="Days of history before --now.")
@click.option("--seed", default=7, show_default=True, help="Seed of the simulated account.")
@click.option("--now", help="Simulated time at the first collection [default: today 00:00 UTC].")
@click.option(
    "--advance",
    default=120,
    show_default=True,
    help="Minutes the simulated clock moves before the second collection.",
)
@data_option
def demo(
    pipelines: int, days: int, seed: int, now: str | None, advance: int, data: DataRoot
) -> None:
    """Collect a simulated account twice and print reports.

    The account runs in this process; its history is recorded into --data, its clock
    moves --advance minutes, it is recorded again, and reports are printed.
    """
    from recorder.simulator import Account, SimulatorServer

    start = parse_bound(now, name="--now") if now else midnight_utc()
    if pipelines < 1 or days < 0 or advance < 0:
        raise UserError("--pipelines must be at least 1, --days and --advance not negative")
    try:
        data.path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {data}: {exc.strerror}") from None
    if ensure_credentials():
        click.echo("No AWS credentials configured: using dummy ones for the simulator.", err=True)

    account = Account(pipelines=pipelines, days=days, seed=seed, now=start)
    click.echo(
        f"Simulated account {account.account_id}/{REGION}: {pipelines} pipelines, "
        f"{days} days of history up to {start:%Y-%m-%d %H:%M} UTC (seed {seed}).",
        err=True,
    )
    with SimulatorServer(account, port=0) as server:
        click.echo(
            f"Simulator listening at {server.endpoint_url}; recording into {data}/", err=True
        )
        _collect(data, server.endpoint_url, account.now, f"Collecting {days} days of history")
        account.advance(minutes=advance)
        _collect(data, server.endpoint_url, account.now, f"Clock +{advance} min: collecting again")

    con = queries.connect(data)
    for name in ("pipeline-summary", "stage-durations", "dora"):
        heading = f"== {name}: {queries.named_queries()[name].description}"
        click.echo("\n" + (heading if len(heading) <= 80 else heading[:79] + "…"))
        # at their natural width: a report never cuts a pipeline name
        result = queries.run_query(con, name, now=account.now, data_root=data)
        write_result(result, "table", width=NATURAL_WIDTH)
    from queries.report import Selection, build_report  # Bokeh: imported when used

    report = data.path.parent / "report.html"
    selection = Selection(start - timedelta(days=days), None, account.now)
    write_html(report, build_report(con, selection, data_root=data))
    click.echo(f"\nReport: {report} (open it in a browser)", err=True)
    click.echo(
        f"More: `cprec queries`, `cprec query lead-time --data {data}`, "
        f'`cprec sql "SELECT * FROM stage_runs LIMIT 5" --data {data}`.',
        err=True,
    )
