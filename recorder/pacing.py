"""Pace the requests of one account and region near the rate AWS grants.

Why not botocore's adaptive mode alone: it treats every throttle as congestion and caps
its rate at twice the rate it measured, which falls while the workers sleep in backoff,
so throttles that do not come from our rate (another tool of the account, a service
having a bad minute) spiral it down to 0.5 requests/s: 12 pipelines x 30 days took
1,946 s with 30 % of calls throttled at random, 19 s without.

A `Pacer` is a token bucket shared by every worker of one account, region and operation
(`Pacers`: AWS's buckets are per operation). Its rate
follows what AWS delivers, not the throttles as such. Each window (a second and at
least 20 attempts) gives the rate sent, the rate delivered (attempts not throttled)
and the share throttled. AWS's limits are token buckets: past the granted rate, sending
more delivers no more. Throttles that come whatever the rate (a service's bad minute)
take the same share at any rate: sending more delivers more. So:
- a window throttled no more than usual (the baseline: the median share of the recent
  windows whose throttles were found not ours) grows the rate by a quarter;
- a window throttled more is compared with the latest paced window whose sent rate
  differs by 15 % or more: if delivery followed sending (elasticity 0.5 or more), the
  throttles are not ours: the share joins the baseline and the rate grows; otherwise
  (or with no such window) the window estimates the granted rate: what it delivered
  over the baseline's complement (random throttles put back), never below the floor;
  the rate becomes the median of the last 5 estimates (one window's is noisy).
Near the granted rate last found it grows by 5 % a window instead (probing past a
bucket's rate costs throttled attempts); sending 10 % past it unthrottled forgets it.
Against a token bucket of rate R it creeps past R, comes back to R, and again; against
throttles at random it keeps growing, bounded by twice what was sent.
Like botocore's adaptive mode it paces nothing until the first throttle, then starts
from what the last window delivered.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

FLOOR = 0.5
CEILING = 500.0
WINDOW_S = 1.0
WINDOW_MIN_ATTEMPTS = 20  # fewer make the share too noisy to tell (sd 0.1 at 0.3)
RECENT = 9  # windows kept, for a comparison and for the baseline
GROW = 1.25
# Near the granted rate last found, probe by 5 % a window: each probe past it costs
# throttled attempts (a quarter over R throttles a fifth of what is sent), and a
# bucket's burst hides the limit for a while (2R tokens last 40 s at 1.05 R).
NEAR, GROW_NEAR, FORGET = 0.8, 1.05, 1.1
LIMITS = 5
ABOVE_BASELINE = 0.05  # a share this much over the baseline is more than usual
APART = 1.15  # two windows compared must have sent rates this far apart
ELASTIC = 0.5  # delivery following sending this much: the throttles are not ours


@dataclass(frozen=True)
class Window:
    sent: float  # attempts per second
    delivered: float  # attempts not throttled, per second
    share: float  # throttled / attempts


class Pacer:
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.rate: float | None = None  # None: not pacing (no throttle yet)
        self.clock, self.sleep = clock, sleep
        self.tokens = 1.0
        self.last = clock()
        self._lock = threading.Lock()
        self.window_start = self.last
        self.attempts = self.throttled = 0
        self.paced: deque[Window] = deque(maxlen=RECENT)  # windows sent while pacing
        self.baseline_shares: deque[float] = deque(maxlen=RECENT)
        self.grants: deque[float] = deque(maxlen=LIMITS)  # the granted rate's last estimates
        self.history: list[tuple[float, float]] = []  # (seconds, rate) at each change
        self._t0 = self.last

    def acquire(self) -> None:
        """Wait for a token (called by each worker before each HTTP request)."""
        while True:
            with self._lock:
                if self.rate is None:
                    return
                now = self.clock()
                self.tokens = min(max(1.0, self.rate), self.tokens + (now - self.last) * self.rate)
                self.last = now
                if self.tokens >= 1.0 - 1e-9:  # a token less a rounding error is a token
                    self.tokens -= 1.0
                    return
                wait = (1.0 - self.tokens) / self.rate
            self.sleep(wait)

    @property
    def limit(self) -> float | None:
        """The granted rate last found: the median of its estimates (None: none known)."""
        return statistics.median(self.grants) if self.grants else None

    @property
    def baseline(self) -> float:
        """The share of attempts throttled whatever the rate (0 until one is seen)."""
        return statistics.median(self.baseline_shares) if self.baseline_shares else 0.0

    def record(self, *, throttled: bool) -> None:
        """An attempt's outcome (every answer, and every broken connection)."""
        with self._lock:
            self.attempts += 1
            self.throttled += throttled
            now = self.clock()
            elapsed = now - self.window_start
            if elapsed < WINDOW_S or self.attempts < WINDOW_MIN_ATTEMPTS:
                return
            w = Window(self.attempts / elapsed, (self.attempts - self.throttled) / elapsed,
                       self.throttled / self.attempts)  # fmt: skip
            self.window_start, self.attempts, self.throttled = now, 0, 0
            if self.rate is None:
                if w.share == 0:
                    self.baseline_shares.append(0.0)
                else:  # the first throttles: from what this window delivered
                    self._set(now, self._limited(w))
                return
            usual = w.share <= self.baseline + ABOVE_BASELINE
            if usual or self._elastic(w):  # not limited
                # A share found not ours joins the baseline; one merely as usual only if
                # it is below it: else the throttles a rate causes, each a little over
                # the baseline, would ratchet it up until all of them were "usual".
                if not usual or w.share <= self.baseline:
                    self.baseline_shares.append(w.share)
                if self.limit is not None and w.sent > self.limit * FORGET:
                    self.grants.clear()  # sent well past it and not limited: the grant rose
                near = self.limit is not None and self.rate >= NEAR * self.limit
                grow = GROW_NEAR if near else GROW
                rate = min(CEILING, self.rate * grow, max(self.rate, 2 * w.sent))
            else:
                rate = self._limited(w)
            self.paced.append(w)
            self._set(now, rate)

    def _limited(self, w: Window) -> float:
        """The granted rate after a window found limited: what it delivered over the
        baseline's complement, the median of the last LIMITS such estimates (one
        window's is noisy: at 5/s a window is 20 attempts, and with 30 % throttled at
        random its deliveries vary by +-15 %)."""
        self.grants.append(max(FLOOR, w.delivered / (1.0 - min(self.baseline, 0.9))))
        return self.limit

    def _elastic(self, w: Window) -> bool:
        """Whether delivery followed sending since the latest throttled window sent far
        enough from this one's rate: log(delivered ratio) / log(sent ratio) >= ELASTIC."""
        for ref in reversed(self.paced):
            # Only a throttled window tells what sending more or less delivers: a clean
            # one delivered what it sent, and past a bucket's refill a little more.
            if ref.share > 0 and abs(math.log(w.sent / ref.sent)) >= math.log(APART):
                if ref.delivered <= 0 or w.delivered <= 0:
                    return False
                return (
                    math.log(w.delivered / ref.delivered) / math.log(w.sent / ref.sent) >= ELASTIC
                )
        return False

    def _set(self, now: float, rate: float) -> None:
        if rate == self.rate:
            return
        if self.rate is None:
            self.last, self.tokens = now, 1.0
        self.rate = rate
        self.history.append((now - self._t0, rate))


class Pacers:
    """A Pacer per operation, for one client (one account and region), shared by every
    worker. AWS's limits are token buckets per operation (or family), and the simulator's
    are per operation: one pacer over all operations would pace ListActionExecutions by
    what GetPipelineExecution's bucket delivers. An operation that is never throttled is
    never paced. Where AWS shares one bucket between operations, each operation's pacer
    learns the share its own attempts are delivered."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.clock, self.sleep = clock, sleep
        self.by_operation: dict[str, Pacer] = {}
        self._lock = threading.Lock()

    def pacing(self) -> bool:
        """Whether any operation is paced (the account has been throttled)."""
        with self._lock:
            return any(p.rate is not None for p in self.by_operation.values())

    def of(self, operation: str) -> Pacer:
        with self._lock:
            pacer = self.by_operation.get(operation)
            if pacer is None:
                pacer = self.by_operation[operation] = Pacer(self.clock, self.sleep)
            return pacer

    def attach(self, client, throttle_codes: frozenset[str]) -> None:
        """Pace `client`'s requests and learn from its answers (botocore events, named
        `<event>.<service>.<operation>`)."""
        events = client.meta.events
        service = client.meta.service_model.service_id.hyphenize()

        def on_send(event_name: str, **_kw) -> None:
            self.of(event_name.rsplit(".", 1)[-1]).acquire()

        def on_response(event_name: str, response=None, caught_exception=None, **_kw) -> None:
            # Must return None: botocore takes the first non-None answer as a retry delay.
            pacer = self.of(event_name.rsplit(".", 1)[-1])
            if response is None:
                pacer.record(throttled=False)
                return
            http, parsed = response
            code = (parsed or {}).get("Error", {}).get("Code")
            pacer.record(throttled=code in throttle_codes or http.status_code == 429)

        events.register(f"before-send.{service}", on_send)
        events.register(f"needs-retry.{service}", on_response)
