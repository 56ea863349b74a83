"""Build the simulated account's server from command-line values (`cprec simulate`)."""

from __future__ import annotations

from datetime import datetime

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


def faults_from(**kw) -> Faults:
    try:
        return Faults(**kw)
    except ValueError as e:
        raise UserError(str(e)) from None
