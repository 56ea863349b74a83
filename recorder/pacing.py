"""Pace the requests of one account and region near the rate AWS grants.

Why not botocore's adaptive mode alone: it treats every throttle as congestion and caps
its rate at twice the rate it measured, which falls while the workers sleep in backoff,
so throttles that do not come from our rate (another tool of the account, a service
having a bad minute) spiral it down to 0.5 requests/s: 12 pipelines x 30 days took
1,946 s with 30 % of calls throttled at random, 19 s without.

A `Pacer` is a token bucket shared by every worker of one account and region, whose
rate follows the throttles that our rate causes, not those that come whatever it is:
- each window (a second and at least 20 attempts), the share of attempts throttled;
- the baseline, the median share of the last windows: what is throttled whatever the
  rate (with AWS's token buckets, 0 while we are below the granted rate);
- at the baseline, the rate grows by a quarter; well above it (throttles that our rate
  causes), it shrinks by that excess (the share our rate had too many), at most by
  half, never below the floor; in between it holds.
Like botocore's adaptive mode it paces nothing until the first throttle, then starts
from the rate the last window was granted.
Against a token bucket of rate R it settles around R (a few throttles each time it
probes above); against throttles at random it keeps its rate.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

FLOOR = 0.5
CEILING = 500.0
WINDOW_S = 1.0
WINDOW_MIN_ATTEMPTS = 20  # fewer make the share too noisy to tell an excess (sd 0.1 at 0.3)
BASELINE_WINDOWS = 9
GROW, MOST_SHRINK = 1.25, 0.5
AT_BASELINE, ABOVE_BASELINE = 0.05, 0.15


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
        self.shares: deque[float] = deque(maxlen=BASELINE_WINDOWS)
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
                if self.tokens >= 1.0:
                    self.tokens -= 1.0
                    return
                wait = (1.0 - self.tokens) / self.rate
            self.sleep(wait)

    def record(self, *, throttled: bool) -> None:
        """An attempt's outcome (every answer, and every broken connection)."""
        with self._lock:
            self.attempts += 1
            self.throttled += throttled
            now = self.clock()
            if now - self.window_start < WINDOW_S or self.attempts < WINDOW_MIN_ATTEMPTS:
                return
            share = self.throttled / self.attempts
            self.shares.append(share)
            excess = share - sorted(self.shares)[len(self.shares) // 2]  # over the median
            if self.rate is None:  # the first throttles: from what this window was granted
                sent = self.attempts / (now - self.window_start)
                rate = None if not self.throttled else max(FLOOR, sent * (1.0 - share))
            elif excess <= AT_BASELINE:
                rate = min(CEILING, self.rate * GROW)
            elif excess > ABOVE_BASELINE:
                rate = max(FLOOR, self.rate * max(MOST_SHRINK, 1.0 - excess))
            else:
                rate = self.rate
            if rate != self.rate:
                if self.rate is None:
                    self.last, self.tokens = now, 1.0
                self.rate = rate
                self.history.append((now - self._t0, rate))
            self.window_start, self.attempts, self.throttled = now, 0, 0

    def attach(self, client, throttle_codes: frozenset[str]) -> None:
        """Pace `client`'s requests and learn from its answers (botocore events)."""
        events = client.meta.events
        service = client.meta.service_model.service_id.hyphenize()

        def on_send(**_kw) -> None:
            self.acquire()

        def on_response(response=None, caught_exception=None, **_kw) -> None:
            # Must return None: botocore takes the first non-None answer as a retry delay.
            if response is None:
                self.record(throttled=False)
                return
            http, parsed = response
            code = (parsed or {}).get("Error", {}).get("Code")
            self.record(throttled=code in throttle_codes or http.status_code == 429)

        events.register(f"before-send.{service}", on_send)
        events.register(f"needs-retry.{service}", on_response)
