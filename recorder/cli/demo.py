"""`cprec demo`: record a simulated account twice and show what the query layer answers.

Nothing here talks to AWS: the simulated account runs in this process behind a local
endpoint, and the collector is pointed at it. If no AWS credentials are configured,
dummy ones are set in this process's environment only (botocore signs every request).

The demo records into --data, by default the `./data` every other command reads, so the
README's next commands need no flag; and it builds the query cache there, as `cprec
collect` does, so those commands answer in well under a second. It refuses a data root
holding another history (another simulated account, or a real one: `.demo.json` names
the simulated history a root holds) rather than recording into a directory of its own:
two histories merged would change every figure without a word, and a directory of its
own would leave `./data` answering about something else than what the demo printed.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from recorder.cli.options import data_option
from recorder.cli.report import write_html
from recorder.errors import UserError
from recorder.timeparse import parse_bound

if TYPE_CHECKING:
    from recorder.root import DataRoot

REGION = "us-east-1"
NATURAL_WIDTH = 1_000
MARKER = ".demo.json"  # the simulated history a data root holds (claim_root)


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


def claim_root(root: Path, history: dict) -> None:
    """Let the demo record `history` (its account's seed, size and clock) into `root` only
    if `root` is empty or holds that same history: the marker naming it is written before
    anything is recorded, whole (a temporary file, then a hard link, which also fails if a
    marker exists: two demos started at once cannot both claim the root)."""
    marker = root / MARKER
    # (a marker's temporary file is another demo claiming the root at this moment)
    if not marker.exists() and any(not p.name.startswith(MARKER) for p in root.iterdir()):
        raise UserError(
            f"{root} holds recorded history that is not a demo's: pass another --data "
            "(the demo records into an empty directory or its own)"
        )
    tmp = root / f"{MARKER}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(history) + "\n", encoding="utf-8")
        os.link(tmp, marker)
    except FileExistsError:
        pass  # claimed before: compared below
    except OSError as exc:
        raise UserError(f"cannot write {marker}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    try:
        held = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        held = None
    if held != history:
        raise UserError(
            f"{root} holds another simulated history ({_described(held)}) than this demo's "
            f"({_described(history)}): pass another --data, or delete {root} first"
        )


def _described(history: dict | None) -> str:
    if not isinstance(history, dict) or set(history) != {"seed", "pipelines", "days", "now"}:
        return f"an unreadable {MARKER}"
    return (
        f"seed {history['seed']}, {history['pipelines']} pipelines, {history['days']} days "
        f"up to {history['now']}"
    )


def _collect(data: DataRoot, url: str, now: datetime, label: str) -> int:
    from recorder.collect import collect
    from recorder.config import CollectConfig

    click.echo(f"{label} at {now:%Y-%m-%d %H:%M} UTC…", err=True)
    started = time.monotonic()
    # the query cache built at the end of the first collection, refreshed by the second
    config = CollectConfig(regions=(REGION,), endpoint_url=url, now=now, build_cache=True)
    result = collect(data, config)
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
    import queries  # DuckDB, pyarrow, botocore: imported when the command runs (options.py)
    from queries.output import write_result
    from recorder.simulator import Account, SimulatorServer

    start = parse_bound(now, name="--now") if now else midnight_utc()
    if pipelines < 1 or days < 0 or advance < 0:
        raise UserError("--pipelines must be at least 1, --days and --advance not negative")
    if data.is_s3:  # its report.html is written beside the data root
        raise UserError("the demo records into a local directory: pass --data DIR")
    try:
        data.path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {data}: {exc.strerror}") from None
    stamp = start.astimezone(UTC).isoformat().replace("+00:00", "Z")  # as --now takes it
    history = {"seed": seed, "pipelines": pipelines, "days": days, "now": stamp}
    claim_root(data.path, history)
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
