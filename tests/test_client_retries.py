"""The clients' retries under sustained faults: no retry quota, attempts still bounded.

botocore's standard/adaptive modes give each client a 500-unit retry quota (5 units per
throttled retry, 14 per other retry, refunded only by successes); once it is spent no
call of that client is retried. `recorder.client.make_client` lifts it. Everything goes
through real boto3 clients over HTTP against the simulator on loopback.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from botocore.retries import adaptive, quota, standard

import recorder.client as client_mod
from recorder.client import MAX_ATTEMPTS, CallStats, UnlimitedRetryQuota, make_client
from recorder.pacing import Pacers
from recorder.simulator import Account, Faults, SimulatorServer

NOW = datetime(2026, 11, 1, tzinfo=UTC)
CALLS = 15  # 15 calls × 10 retries: 150 retries, far past what 500 units buy
ATTEMPTS = MAX_ATTEMPTS + 1  # botocore's `max_attempts` counts retries


@pytest.fixture(autouse=True)
def _fast(fast_backoff):
    """Every test here retries at once (conftest.fast_backoff)."""


FAULTS = {
    "throttle": (Faults(throttle_rate=1.0), standard.RetryQuotaChecker._THROTTLING_RETRY_COST),
    "error": (Faults(error_rate=1.0), standard.RetryQuotaChecker._RETRY_COST),
}


def stock_attempts(calls: int, cost: int) -> list[int]:
    """Attempts per call of a stock botocore client when every attempt fails: a retry is
    made while the attempt limit allows and the quota holds `cost` units."""
    capacity, attempts = quota.RetryQuota.INITIAL_CAPACITY, []
    for _ in range(calls):
        n = 1
        while n < ATTEMPTS and capacity >= cost:
            capacity -= cost
            n += 1
        attempts.append(n)
    return attempts


def fail_every_call(srv, stats: CallStats, client) -> list[dict]:
    metadata = []
    for _ in range(CALLS):
        with pytest.raises(ClientError) as e:
            client.list_pipelines()
        metadata.append(e.value.response["ResponseMetadata"])
    assert stats.calls == {"ListPipelines": CALLS}
    assert srv.calls == stats.attempts  # every HTTP request the server saw was counted
    return metadata


@pytest.mark.parametrize("kind", FAULTS)
def test_every_call_is_retried_up_to_max_attempts_however_many_failed_before(kind):
    faults, cost = FAULTS[kind]
    # Control arithmetic: what the default quota would have allowed here.
    assert sum(stock_attempts(CALLS, cost)) - CALLS < CALLS * MAX_ATTEMPTS
    with SimulatorServer(Account(names=["one"], days=1, seed=1, now=NOW), faults=faults) as srv:
        stats = CallStats()
        client = make_client("codepipeline", region="us-east-1", endpoint_url=srv.endpoint_url,
                             stats=stats)  # fmt: skip
        metadata = fail_every_call(srv, stats, client)
        assert srv.faulted == {kind: CALLS * ATTEMPTS}
    assert stats.attempts == {"ListPipelines": CALLS * ATTEMPTS}  # 165: none refused
    assert stats.retries == CALLS * MAX_ATTEMPTS  # 150 retries in one client
    assert [m["RetryAttempts"] for m in metadata] == [MAX_ATTEMPTS] * CALLS
    assert all(m.get("MaxAttemptsReached") for m in metadata)
    assert not any(m.get("RetryQuotaReached") for m in metadata)
    if kind == "throttle":
        assert stats.throttles == {"ListPipelines": CALLS * ATTEMPTS}
    else:
        assert stats.transient == {"ListPipelines": CALLS * ATTEMPTS}


@pytest.mark.parametrize("kind", FAULTS)
def test_control_a_stock_client_stops_retrying_once_its_quota_is_spent(kind, monkeypatch):
    """The same scenario without the fix: botocore's quota refuses the later retries."""
    monkeypatch.setattr(client_mod, "tune_retries", lambda client, pacer=None: None)
    faults, cost = FAULTS[kind]
    expected = stock_attempts(CALLS, cost)
    # throttle: 10 calls × 11 attempts (100 retries × 5 = 500 units), then 1 attempt each;
    # error: 3 × 11 (30 × 14 = 420), one call with 6 attempts (5 × 14 = 70), then 1 each.
    stock = {"throttle": [ATTEMPTS] * 10 + [1] * 5, "error": [ATTEMPTS] * 3 + [6] + [1] * 11}
    assert expected == stock[kind]
    with SimulatorServer(Account(names=["one"], days=1, seed=1, now=NOW), faults=faults) as srv:
        stats = CallStats()
        client = make_client("codepipeline", region="us-east-1", endpoint_url=srv.endpoint_url,
                             stats=stats)  # fmt: skip
        metadata = fail_every_call(srv, stats, client)
    assert [m["RetryAttempts"] + 1 for m in metadata] == expected
    assert stats.attempts == {"ListPipelines": sum(expected)}
    assert [bool(m.get("RetryQuotaReached")) for m in metadata] == [n < ATTEMPTS for n in expected]


def test_the_quota_is_replaced_and_the_pacer_attached():
    client = make_client("codepipeline", region="us-east-1", endpoint_url="http://127.0.0.1:9")
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": ATTEMPTS}
    emitter = client.meta.events._emitter
    handler = emitter._unique_id_handlers["retry-config-codepipeline"]["handler"].__self__
    assert type(handler._retry_quota._quota) is UnlimitedRetryQuota
    assert handler._retry_policy._retry_backoff._pacers is client.cprec_pacers
    assert handler._retry_policy._retry_checker._pacers is client.cprec_pacers
    owners = [getattr(h, "__self__", None)
              for h in emitter._handlers.prefix_search("needs-retry.codepipeline.X")]  # fmt: skip
    assert not any(isinstance(o, adaptive.ClientRateLimiter) for o in owners)
    assert isinstance(client.cprec_pacers, Pacers)
    # Each client has its own retry handler: a second client's is a different object.
    other = make_client("codepipeline", region="us-east-1", endpoint_url="http://127.0.0.1:9")
    other_emitter = other.meta.events._emitter
    assert other_emitter._unique_id_handlers["retry-config-codepipeline"]["handler"].__self__ \
        is not handler  # fmt: skip


def test_client_creation_fails_loudly_when_botocore_wires_retries_differently(monkeypatch):
    # A botocore that registers its retry handler some other way: no silent fallback.
    monkeypatch.setattr(standard, "register_retry_handler", lambda client, **kw: None)
    with pytest.raises(RuntimeError, match="cannot find the retry quota"):
        make_client("codepipeline", region="us-east-1", endpoint_url="http://127.0.0.1:9")


def test_client_creation_fails_loudly_on_an_unknown_quota_type(monkeypatch):
    register = standard.register_retry_handler

    def register_other_quota(client, **kw):
        handler = register(client, **kw)
        handler._retry_quota._quota = object()  # a quota we know nothing about
        return handler

    monkeypatch.setattr(standard, "register_retry_handler", register_other_quota)
    with pytest.raises(RuntimeError, match="unexpected retry handler"):
        make_client("codepipeline", region="us-east-1", endpoint_url="http://127.0.0.1:9")
