"""The collector's pacer (recorder/pacing.py): shared by every worker of an account and
region, slowed by the throttles its rate causes, sped up again by success, and not
dragged down by throttles that come whatever its rate. Each figure is worked out in the
comments; the clock is a fake one (no timing)."""

from __future__ import annotations

import threading

from conftest import SIM_NOW as NOW
from conftest import run

from recorder import client as client_mod
from recorder.pacing import Pacer
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


def test_against_a_token_bucket_it_probes_above_and_comes_back_to_the_granted_rate():
    """A bucket granting 20/s: sending more delivers no more."""
    clock = Clock()
    pacer = Pacer(clock, clock.sleep)
    got = rates(pacer, clock, [
        (40, 20),  # unpaced: 20 delivered -> 20/s
        (20, 0),   # clean (share 0 joins the baseline [0]): x 1.25 -> 25
        # 25 sent, 20 delivered (share 0.2 > 0 + 0.05); against the last second sent
        # 1.15x apart (20 sent, 20 delivered) elasticity log(20/20) / log(25/20) = 0
        # < 0.5: ours; the rate is what was delivered over the baseline's complement:
        # 20 / (1 - 0) = 20
        (25, 5),
        (20, 0),   # x 1.25 again
        (25, 5),   # and back
    ])  # fmt: skip
    assert got == [20.0, 25.0, 20.0, 25.0, 20.0]
    assert pacer.history == [(1.0, 20.0), (2.0, 25.0), (3.0, 20.0), (4.0, 25.0), (5.0, 20.0)]


def test_a_neighbour_taking_more_of_the_bucket_slows_it_and_success_speeds_it_up_again():
    clock = Clock()
    pacer = Pacer(clock, clock.sleep)
    got = rates(pacer, clock, [
        (40, 8),   # unpaced, 32 delivered -> 32/s
        (32, 0),   # clean: baseline [0], x 1.25 -> 40
        # a neighbour now spends half the bucket: 40 sent, 16 delivered, share 0.6;
        # against 32 sent / 32 delivered: log(16/32) / log(40/32) = -3.1 < 0.5 -> 16
        (40, 24),
        (16, 0),   # not below 20 attempts: no window closes (1 s, 16 attempts)
        (20, 0),   # now 36 attempts over 2 s: 18 sent, 18 delivered, clean: x 1.25 -> 20
        (20, 0),   # the neighbour has gone: x 1.25 -> 25
        (25, 0),   # -> 31.25
    ])  # fmt: skip
    assert got == [32.0, 40.0, 16.0, 16.0, 20.0, 25.0, 31.25]


def test_throttles_that_come_whatever_the_rate_do_not_drag_it_down():
    """30 % of attempts throttled at random: sending more delivers more."""
    clock = Clock()
    pacer = Pacer(clock, clock.sleep)
    got = rates(pacer, clock, [
        (40, 12),  # unpaced, 28 delivered -> 28/s
        # 28 sent, 20 delivered (share 0.29 > 0 + 0.05), no paced second to compare
        # with: taken as ours -> 20 / (1 - 0) = 20
        (28, 8),
        # 20 sent, 14 delivered (share 0.3); against 28 sent / 20 delivered:
        # log(14/20) / log(20/28) = 1.06 >= 0.5, not ours: the baseline becomes [0.3]
        # and the rate grows x 1.25 (at most to twice what was sent, 40) -> 25
        (20, 6),
        # 40 sent with 12 throttled: share 0.3 <= 0.3 + 0.05, as usual: x 1.25 each
        # second, at most twice the 40 sent
        *[(40, 12)] * 7,
    ])  # fmt: skip
    assert got == [28.0, 20.0, 25.0, 31.25, 39.0625, 48.828125, 61.03515625,
                   76.2939453125, 80.0, 80.0]  # fmt: skip
    assert pacer.baseline == 0.3


def test_every_worker_of_a_region_shares_one_pacer(monkeypatch, tmp_path):
    made, users = [], {}

    class Counted(Pacer):
        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            made.append(self)

        def acquire(self) -> None:
            users.setdefault(id(self), set()).add(threading.current_thread().name)
            super().acquire()

    monkeypatch.setattr(client_mod, "Pacer", Counted)
    acct = Account(pipelines=6, days=2, seed=7, now=NOW)
    with SimulatorServer(acct) as srv:
        assert run(tmp_path, srv, acct, workers=4).exit_code == 0
    # one for STS (GetCallerIdentity), one for CodePipeline in the region
    assert len(made) == 2
    workers = [names for names in users.values() if any(n.startswith("cprec") for n in names)]
    (shared,) = workers  # one pacer served every worker thread
    assert len([n for n in shared if n.startswith("cprec")]) == 4


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

    pacer = Pacer()
    backoff = client_mod.PacedBackoff(
        pacer, service_name="codepipeline", random=lambda: 0.5,
        throttling_detector=standard.ThrottlingErrorDetector(standard.RetryEventAdapter()),
    )  # fmt: skip

    def context(status: int, code: str, headers: dict | None = None, attempt: int = 3):
        return standard.RetryContext(
            attempt_number=attempt,
            parsed_response={"Error": {"Code": code}},
            http_response=AWSResponse("http://x", status, headers or {}, None),
        )

    throttle = context(400, "ThrottlingException")
    fifth = context(400, "ThrottlingException", attempt=5)
    named = context(400, "ThrottlingException", {"x-amz-retry-after": "1500"})
    error = context(500, "InternalFailure")
    cases = (throttle, fifth, named, error)
    assert [backoff.delay_amount(c) for c in cases] == [2.0, 8.0, 2.0, 0.1]
    pacer.rate = 5.0
    assert [backoff.delay_amount(c) for c in cases] == [0.0, 1.0, 2.0, 0.1]
    assert fifth.attempt_number == 5  # the context botocore keeps is left as it was
