"""The simulator throttles by rate, as AWS does: token buckets per account, region and
operation, shared by every client, with a noisy neighbour that spends a share."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from click.testing import CliRunner
from conftest import SIM_NOW as NOW

from recorder.cli import main
from recorder.simulator import Account, Faults, SimulatorServer
from recorder.simulator.ratelimit import RateLimiter, Rates, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_bucket_grants_its_burst_then_its_rate():
    clock = Clock()
    bucket = TokenBucket(rate=5.0, burst=10.0, clock=clock)
    # full at start: 10 at once, the 11th refused
    assert [bucket.take() for _ in range(11)] == [True] * 10 + [False]
    clock.t += 1.0  # 1 s at 5/s: 5 tokens
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.t += 10.0  # 50 tokens would arrive, the bucket holds 10
    assert sum(bucket.take() for _ in range(20)) == 10
    assert (bucket.taken, bucket.refused) == (25, 12)


def test_a_neighbour_spends_its_share_of_every_token():
    clock = Clock()
    bucket = TokenBucket(rate=10.0, burst=20.0, neighbour_share=0.5, clock=clock)
    assert sum(bucket.take() for _ in range(20)) == 20  # the burst, as found
    granted = []
    for _ in range(20):  # 10 s, asking 10 times every 0.5 s (20/s)
        clock.t += 0.5
        granted.append(sum(bucket.take() for _ in range(10)))
    # every 0.5 s 5 tokens arrive: 2.5 to the neighbour, 2.5 to us (2, then 3 with the
    # half left over): 10 s x 10 tokens/s = 100 tokens, 50 each
    assert granted == [2, 3] * 10
    assert bucket.neighbour_taken == pytest.approx(50.0)


def test_buckets_are_per_account_region_and_operation_with_their_own_rates():
    clock = Clock()
    limiter = RateLimiter(Rates(rate=1.0, per_operation={"GetPipelineExecution": 3.0}), clock)
    # burst 2 x rate: 2 for ListPipelineExecutions, 6 for GetPipelineExecution
    assert sum(limiter.allow("1", "us-east-1", "ListPipelineExecutions") for _ in range(9)) == 2
    assert sum(limiter.allow("1", "us-east-1", "GetPipelineExecution") for _ in range(9)) == 6
    assert sum(limiter.allow("1", "eu-west-1", "ListPipelineExecutions") for _ in range(9)) == 2
    assert sum(limiter.allow("2", "us-east-1", "ListPipelineExecutions") for _ in range(9)) == 2
    assert RateLimiter(Rates(), clock).allow("1", "us-east-1", "GetPipelineState")  # no limit


def test_rates_refuse_what_is_not_one():
    with pytest.raises(ValueError):
        Rates(rate=-1)
    with pytest.raises(ValueError):
        Rates(neighbour_share=1.0)


def client(srv, region: str = "us-east-1"):
    return boto3.client(
        "codepipeline",
        region_name=region,
        endpoint_url=srv.endpoint_url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),  # see every answer
    )


def outcomes(c, n: int) -> list[str]:
    got = []
    for _ in range(n):
        try:
            c.list_pipelines()
            got.append("ok")
        except ClientError as e:
            got.append(e.response["Error"]["Code"])
    return got


def test_the_server_throttles_by_rate_and_every_client_shares_the_bucket():
    acct = Account(pipelines=1, days=1, seed=3, now=NOW)
    # 0.01/s: no token comes back during the test; burst 4
    with SimulatorServer(acct, Faults(api_rate=0.01, api_burst=4)) as srv:
        first, second = client(srv), client(srv)
        assert outcomes(first, 3) == ["ok"] * 3
        assert outcomes(second, 2) == ["ok", "ThrottlingException"]  # one bucket for both
        assert outcomes(client(srv, "eu-west-1"), 1) == ["ok"]  # another region's bucket
        assert srv.faulted["rate"] == 1


def test_simulate_takes_the_rate_options():
    result = CliRunner().invoke(main, ["simulate", "--api-rate-for", "GetPipeline"])
    assert result.exit_code == 2
    assert "'GetPipeline' is not OPERATION=RATE" in result.output
