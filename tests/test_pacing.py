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
    """One second of attempts (1/32 s apart: exact in binary), the last closing the window."""
    for i in range(attempts):
        clock.t += 1.0 / attempts
        pacer.record(throttled=i < throttled)


def test_it_paces_nothing_until_throttled_then_starts_from_what_was_granted():
    clock = Clock()
    pacer = Pacer(clock, clock.sleep)
    for _ in range(100):
        pacer.acquire()
    assert clock.slept == 0.0 and pacer.rate is None
    window(pacer, clock, throttled=0)  # a clean second: still not pacing
    assert pacer.rate is None
    window(pacer, clock, throttled=16)  # 32 sent in 1 s, half throttled: 32 x 0.5 = 16/s
    assert pacer.rate == 16.0
    for _ in range(17):  # a token at once, then one every 1/16 s
        pacer.acquire()
    assert clock.slept == 1.0


def test_a_throttle_above_the_baseline_slows_it_and_success_speeds_it_up():
    clock = Clock()
    pacer = Pacer(clock, clock.sleep)
    window(pacer, clock, throttled=16)  # starts at 16/s; shares [0.5]
    for expected in (20.0, 25.0, 31.25, 39.0625):  # clean seconds: x 1.25 each
        window(pacer, clock)
        assert pacer.rate == expected
    # shares [0.5, 0, 0, 0, 0, 0.5]: median 0, so 0.5 is all excess: x (1 - 0.5)
    window(pacer, clock, throttled=16)
    assert pacer.rate == 19.53125
    window(pacer, clock)  # and success speeds it up again: x 1.25
    assert pacer.rate == 24.4140625


def test_throttles_that_come_whatever_the_rate_do_not_drag_it_down():
    clock = Clock()
    pacer = Pacer(clock, clock.sleep)
    window(pacer, clock, throttled=10)  # 10 of 32 throttled: 32 x (1 - 0.3125) = 22/s
    assert pacer.rate == 22.0
    for _ in range(8):  # as many every second: the median is 0.3125, no excess: x 1.25
        window(pacer, clock, throttled=10)
    assert pacer.rate == 22.0 * 1.25**8  # 131.1 req/s


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
