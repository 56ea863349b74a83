"""`cprec simulate`: serve a simulated CodePipeline account until Ctrl-C."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from recorder.errors import UserError
from recorder.simulator.faults import Faults
from recorder.simulator.model import Account, default_now
from recorder.simulator.server import SimulatorServer
from recorder.timeparse import parse_bound


def build_server(
    *,
    host: str = "127.0.0.1",
    port: int = 4566,
    pipelines: int = 20,
    days: int = 30,
    seed: int = 7,
    now: str | None = None,
    rate: float = 6.0,
    faults: Faults | None = None,
) -> SimulatorServer:
    """The server `cprec simulate` runs; bad values raise UserError (exit 2)."""
    start: datetime = parse_bound(now, name="--now") if now else default_now()
    try:
        account = Account(pipelines=pipelines, days=days, seed=seed, now=start, rate=rate)
    except ValueError as e:
        raise UserError(str(e)) from None
    try:
        return SimulatorServer(account, faults=faults, host=host, port=port)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def _faults(**kw) -> Faults:
    try:
        return Faults(**kw)
    except ValueError as e:
        raise UserError(str(e)) from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=4566, show_default=True,
              help="Port (0 picks a free one).")  # fmt: skip
@click.option("--pipelines", type=click.IntRange(0), default=20, show_default=True)
@click.option("--days", type=click.IntRange(0), default=30, show_default=True,
              help="Days of history before --now.")  # fmt: skip
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--now", help="The account's clock at start (default: today 00:00 UTC).")
@click.option("--rate", type=click.FloatRange(0), default=6.0, show_default=True,
              help="Mean executions per pipeline per day.")  # fmt: skip
@click.option("--throttle-rate", type=float, default=0.0, help="Fraction of calls throttled.")
@click.option("--throttle-burst", type=int, default=0, help="Throttle the first N calls.")
@click.option("--error-rate", type=float, default=0.0, help="Fraction of calls answered 500.")
@click.option("--error-burst", type=int, default=0, help="Answer 500 to the next N calls.")
@click.option("--latency-ms", type=float, default=0.0, help="Delay added to every call.")
@click.option("--drop-rate", type=float, default=0.0, help="Fraction of responses cut off.")
@click.option("--access-denied", is_flag=True, help="Deny every CodePipeline call.")
@click.option("--vanish", multiple=True, metavar="NAME",
              help="Pipeline listed but gone for every other call (repeatable).")  # fmt: skip
def simulate(host, port, pipelines, days, seed, now, rate, **fault_options) -> None:
    """Serve a simulated CodePipeline account (AWS JSON over HTTP) until Ctrl-C."""
    faults = _faults(**fault_options, seed=seed)
    server = build_server(host=host, port=port, pipelines=pipelines, days=days, seed=seed,
                          now=now, rate=rate, faults=faults)  # fmt: skip
    click.echo(server.endpoint_url)
    sys.stdout.flush()  # whoever started us may be waiting for this line on a pipe
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
