"""A simulated AWS CodePipeline account, served over HTTP to any boto3 client.

    from recorder.simulator import Account, Faults, SimulatorServer
    acct = Account(pipelines=20, days=30, seed=7)
    with SimulatorServer(acct, faults=Faults(throttle_rate=0.1)) as srv:
        boto3.client("codepipeline", endpoint_url=srv.endpoint_url, ...)

Modules: `definitions` (what pipelines look like), `timeline` (their
deterministic execution history), `projection` and `state` (what the API shows
at the clock), `protocol` (ApiError, input validation), `api` (operations,
paging), `model` (the Account), `sts` (AssumeRole into further accounts,
GetCallerIdentity), `faults`, `server`, `fixtures` (`SeedAccount`, the
shared/seeds scenario), `command` (`cprec simulate`).
"""

from recorder.simulator.faults import Faults
from recorder.simulator.model import Account
from recorder.simulator.protocol import ApiError
from recorder.simulator.server import SimulatorServer

__all__ = ["Account", "ApiError", "Faults", "SimulatorServer"]
