"""Build the simulated account's server from command-line values (`cprec simulate`)."""

from __future__ import annotations

from datetime import datetime

from recorder.errors import UserError
from recorder.simulator.faults import Faults
from recorder.simulator.model import Account, default_now
from recorder.simulator.server import SimulatorServer
from recorder.simulator.sts import member_account_id
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
    accounts: int = 1,
    external_id: str | None = None,
) -> SimulatorServer:
    """The server `cprec simulate` runs; bad values raise UserError (exit 2)."""
    start: datetime = parse_bound(now, name="--now") if now else default_now()
    try:
        held = simulated_accounts(accounts, pipelines=pipelines, days=days, seed=seed,
                                  now=start, rate=rate)  # fmt: skip
    except ValueError as e:
        raise UserError(str(e)) from None
    external_ids = dict.fromkeys((a.account_id for a in held), external_id) if external_id else {}
    try:
        return SimulatorServer(held[0], faults=faults, host=host, port=port, members=held[1:],
                               external_ids=external_ids)  # fmt: skip
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def simulated_accounts(count: int, *, seed: int, **kw) -> list[Account]:
    """`count` accounts: the first is the single-account simulator's (123456789012, `seed`),
    account i the i-th member (member_account_id(i), seed + i): other pipelines, other
    histories, as deterministic as the first."""
    return [Account(seed=seed, **kw)] + [
        Account(seed=seed + i, account_id=member_account_id(i), **kw) for i in range(1, count)
    ]


def faults_from(**kw) -> Faults:
    try:
        return Faults(**kw)
    except ValueError as e:
        raise UserError(str(e)) from None
