"""The collector's pacer (recorder/pacing.py): shared by every worker of an account and
region, slowed by the throttles its rate causes, sped up again by success, and not
dragged down by throttles that come whatever its rate. Each figure is worked out in the
comments; the clock is a fake one (no timing)."""

from __future__ import annotations

import threading

from conftest import SIM_NOW as NOW
from conftest import run

from recorder import client as client_mod
from recorder import pacing as pacing_mod
from recorder.pacing import Pacer, Pacers
from recorder.simulator import Account, SimulatorServer


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.t += seconds


def window(pacer: Pacer, clock: Clock, *, attempts: int = 32, throttled: int = 0) -> None:
    """One second of `attempts` attempts (sent: that many per second), the first
    `throttled` of them throttled, the last closing the window. Times are computed as
    start + (i + 1) / attempts, so the window's length is exactly 1 s."""
    start = clock.t
    for i in range(attempts):
        clock.t = start + (i + 1) / attempts
        pacer.record(throttled=i < throttled)


def rates(pacer: Pacer, clock: Clock, windows: list[tuple[int, int]]) -> list[float | None]:
    """The pacer's rate after each (attempts, throttled) second."""
    out = []
    for attempts, throttled in windows:
        window(pacer, clock, attempts=attempts, throttled=throttled)
        out.append(pacer.rate)
    return out


def test_it_paces_nothing_until_throttled_then_starts_from_what_was_delivered():
    clock = Clock()
    pacer = Pacer(clock, clock.sleep)
    for _ in range(100):
        pacer.acquire()
    assert clock.slept == 0.0 and pacer.rate is None
    window(pacer, clock, throttled=0)  # a clean second: still not pacing
    assert pacer.rate is None
    window(pacer, clock, throttled=16)  # 32 sent in 1 s, 16 delivered: 16 / (1 - 0) = 16/s
    assert pacer.rate == 16.0
    for _ in range(17):  # a token at once, then one every 1/16 s
        pacer.acquire()
    assert clock.slept == 1.0


def against_bucket(pacer: Pacer, clock: Clock, granted: int, seconds: int) -> list[float]:
    """Seconds of sending at the pacer's rate (rounded) to a bucket granting `granted`
    a second (no burst): what is sent past it is throttled. The rate after each."""
    out = []
    for _ in range(seconds):
        sent = round(pacer.rate)
        window(pacer, clock, attempts=sent, throttled=max(0, sent - granted))
        out.append(pacer.rate)
    return out


def test_against_a_token_bucket_it_creeps_past_the_granted_rate_and_comes_back():
    clock = Clock()
    pacer = Pacer(clock, clock.sleep)
    window(pacer, clock, attempts=40, throttled=20)  # unpaced: 20 delivered -> 20/s
    assert (pacer.rate, pacer.limit) == (20.0, 20.0)
    # 20 sent, none throttled: near the limit (20 >= 0.8 x 20), x 1.05 -> 21.
    # 21 sent, 1 throttled: share 1/21 = 0.048 <= 0 + 0.05, as usual (above the
    # baseline, so it does not join it): x 1.05 -> 22.05.
    # 22 sent, 2 throttled: 0.091 > 0 + 0.05, and no paced second sent 15 % apart
    # (20 and 21 are within 10 %) to tell whether delivery follows sending: ours. The
    # granted rate is what was delivered over the baseline's complement, 20 / (1 - 0),
    # and the rate the median of the estimates [20, 20]: 20. And around again.
    assert against_bucket(pacer, clock, 20, 6) == [21.0, 22.05, 20.0, 21.0, 22.05, 20.0]
    # 6 of 126 attempts throttled (4.8 %) over the six seconds
    assert pacer.history[:3] == [(1.0, 20.0), (2.0, 21.0), (3.0, 22.05)]


def test_a_neighbour_taking_more_of_the_bucket_slows_it_and_success_speeds_it_up_again():
    clock = Clock()
    pacer = Pacer(clock, clock.sleep)
    window(pacer, clock, attempts=60, throttled=20)  # unpaced: 40 delivered -> 40/s
    assert against_bucket(pacer, clock, 40, 1) == [42.0]  # 40 sent, clean: x 1.05
    # A neighbour now spends half the bucket: 42 sent, 20 delivered (share 0.52), and
    # against the first paced second (40 sent: 5 % apart) no comparison: ours, an
    # estimate of 20 / (1 - 0) = 20; the median of [40, 20] is 30. 30 sent, 20
    # delivered, against 42 sent / 20 delivered: elasticity log(20/20) / log(30/42) = 0:
    # ours, [40, 20, 20]: 20. Then x 1.05 while clean or as usual (20, 21), and back.
    assert against_bucket(pacer, clock, 20, 5) == [30.0, 20.0, 21.0, 22.05, 20.0]
    # The neighbour has gone: 40 granted. x 1.05 while near the limit found (20):
    # 21, 22.05, 23.15; 23 sent > 1.1 x 20 and not throttled: the grant rose, the limit
    # and its estimates are forgotten, x 1.25 again: 28.94, 36.18, 45.22. 45 sent, 40
    # delivered (share 0.11 > 0 + 0.05): the latest throttled second sent 15 % apart is
    # from the neighbour's time (22 sent, 20 delivered): log(40/20) / log(45/22) = 0.97,
    # taken as not ours (the grant moved in between): x 1.25 -> 56.52. 56 sent, 40
    # delivered, against 45 / 40: elasticity 0, ours -> 40 / (1 - 0) = 40
    grown = [22.05 * 1.05 * 1.25**i for i in range(5)]
    assert against_bucket(pacer, clock, 40, 10) == [21.0, 22.05, *grown, 40.0, 42.0, 44.1]
    assert pacer.limit == 40.0


def test_throttles_that_come_whatever_the_rate_do_not_drag_it_down():
    """30 % of attempts throttled at random: sending more delivers more."""
    clock = Clock()
    pacer = Pacer(clock, clock.sleep)
    got = rates(pacer, clock, [
        (40, 12),  # unpaced, 28 delivered -> 28/s
        # 28 sent, 20 delivered (share 0.29 > 0 + 0.05), no paced second to compare
        # with: taken as ours, an estimate of 20 / (1 - 0) = 20: median of [28, 20], 24
        (28, 8),
        # 20 sent, 14 delivered (share 0.3); against 28 sent / 20 delivered:
        # log(14/20) / log(20/28) = 1.06 >= 0.5, not ours: the baseline becomes [0.3]
        # and the rate grows, near the limit (24) by 5 %: 25.2
        (20, 6),
        # 40 sent with 12 throttled: share 0.3 <= 0.3 + 0.05, as usual; 40 > 1.1 x 24:
        # the limit is forgotten: x 1.25 each second, at most twice the 40 sent
        *[(40, 12)] * 7,
    ])  # fmt: skip
    grown = [24.0 * 1.05 * 1.25**i for i in range(6)]  # 25.2, 31.5, ..., 61.5, 76.9
    assert got == [28.0, 24.0, *grown, 80.0, 80.0]  # then 2 x 40
    assert pacer.baseline == 0.3 and pacer.limit is None


def test_every_worker_of_a_region_shares_one_pacer_per_operation(monkeypatch, tmp_path):
    made, users = [], {}

    class Counted(Pacer):
        def acquire(self) -> None:
            users.setdefault(id(self), set()).add(threading.current_thread().name)
            super().acquire()

    class Kept(Pacers):
        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            made.append(self)

    monkeypatch.setattr(pacing_mod, "Pacer", Counted)
    monkeypatch.setattr(client_mod, "Pacers", Kept)
    acct = Account(pipelines=6, days=2, seed=7, now=NOW)
    with SimulatorServer(acct) as srv:
        assert run(tmp_path, srv, acct, workers=4).exit_code == 0
    # one set for STS (GetCallerIdentity), one for CodePipeline in the region
    sts, codepipeline = made
    assert sorted(sts.by_operation) == ["GetCallerIdentity"]
    assert sorted(codepipeline.by_operation) == [
        "GetPipeline", "GetPipelineExecution", "GetPipelineState", "ListActionExecutions",
        "ListPipelineExecutions", "ListPipelines", "ListRuleExecutions",
    ]  # fmt: skip
    # each operation's one pacer served every worker thread that called it
    for op in ("GetPipelineState", "GetPipelineExecution"):
        threads = users[id(codepipeline.by_operation[op])]
        assert len([n for n in threads if n.startswith("cprec")]) == 4, op


def test_a_throttle_is_retried_at_once_a_few_times_only_while_the_pacer_paces():
    """botocore's backoff after failed attempt n (RetryContext.attempt_number) is
    rand x 2^(n-1) s for a throttle and rand x 0.05 x 2^(n-1) s otherwise; with rand
    fixed at 0.5, after attempt 3: throttle 0.5 x 4 = 2.0 s, 5xx 0.5 x 0.05 x 4 = 0.1 s;
    after attempt 5: throttle 0.5 x 16 = 8.0 s. Once the pacer paces, a throttle's
    first 3 retries are at once (a pacer token is the wait) and later ones back off as
    botocore's first ones: after attempt 5, 0.5 x 2^(5-3-1) = 1.0 s. A server naming
    its delay (x-amz-retry-after: 1500 ms) is obeyed: max(2.0, min(1.5, 2.0 + 5)) = 2.0
    s."""
    from botocore.awsrequest import AWSResponse
    from botocore.retries import standard
    from botocore.session import get_session

    pacers = Pacers()
    backoff = client_mod.PacedBackoff(
        pacers, service_name="codepipeline", random=lambda: 0.5,
        throttling_detector=standard.ThrottlingErrorDetector(standard.RetryEventAdapter()),
    )  # fmt: skip

    operation = (
        get_session().get_service_model("codepipeline").operation_model("GetPipelineExecution")
    )

    def context(status: int, code: str, headers: dict | None = None, attempt: int = 3):
        return standard.RetryContext(
            attempt_number=attempt,
            operation_model=operation,
            parsed_response={"Error": {"Code": code}},
            http_response=AWSResponse("http://x", status, headers or {}, None),
        )

    throttle = context(400, "ThrottlingException")
    fifth = context(400, "ThrottlingException", attempt=5)
    named = context(400, "ThrottlingException", {"x-amz-retry-after": "1500"})
    error = context(500, "InternalFailure")
    cases = (throttle, fifth, named, error)
    assert [backoff.delay_amount(c) for c in cases] == [2.0, 8.0, 2.0, 0.1]
    pacers.of("GetPipelineExecution")  # not pacing yet
    assert [backoff.delay_amount(c) for c in cases] == [2.0, 8.0, 2.0, 0.1]
    pacers.of("ListActionExecutions").rate = 5.0  # any operation paced: the client is
    assert [backoff.delay_amount(c) for c in cases] == [0.0, 1.0, 2.0, 0.1]
    assert fifth.attempt_number == 5  # the context botocore keeps is left as it was


def test_a_throttle_is_retried_up_to_30_attempts_only_while_the_pacer_paces():
    """botocore retries while attempt_number < max_attempts (11: `max_attempts` 10
    retries); while the pacers pace, a throttle is retried while attempt_number < 30."""
    from botocore.awsrequest import AWSResponse
    from botocore.retries import standard

    pacers = Pacers()
    detector = standard.ThrottlingErrorDetector(standard.RetryEventAdapter())
    conditions = client_mod.PacedRetryConditions(pacers, detector, max_attempts=11)

    def retried(status: int, code: str, attempt: int) -> bool:
        return conditions.is_retryable(standard.RetryContext(
            attempt_number=attempt, parsed_response={"Error": {"Code": code}},
            http_response=AWSResponse("http://x", status, {}, None), request_context={},
        ))  # fmt: skip

    attempts = (10, 11, 29, 30)
    throttle = [retried(400, "ThrottlingException", n) for n in attempts]
    error = [retried(500, "InternalFailure", n) for n in attempts]
    assert (throttle, error) == ([True, False, False, False], [True, False, False, False])
    pacers.of("GetPipelineExecution").rate = 5.0
    throttle = [retried(400, "ThrottlingException", n) for n in attempts]
    error = [retried(500, "InternalFailure", n) for n in attempts]
    assert (throttle, error) == ([True, True, True, False], [True, False, False, False])
