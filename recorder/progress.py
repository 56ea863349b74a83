"""What a region's collection has done and has still to do: the progress bar's text and
the log's heartbeat.

Executions to fetch are known pipeline by pipeline, when a pipeline's listing ends; the
pipelines not listed yet are counted at the mean of those listed (the line says "~"
while any is missing). Rates are over the last RATE_WINDOW_S seconds, from the client's
own counts (recorder/client.py CallStats): requests sent per second, throttled answers
per minute, executions fetched per second; the ETA is what is left at that last rate.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

RATE_WINDOW_S = 30.0


def duration(seconds: float) -> str:
    """3 h 05 min, 4 min 10 s, 12 s."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


class Progress:
    def __init__(self, pipelines: int, stats, clock: Callable[[], float] = time.monotonic) -> None:
        self.pipelines = pipelines
        self.stats, self.clock = stats, clock
        self.listed = 0
        self.to_fetch = self.fetched = 0
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, int, int, int]] = deque()
        self.sample()

    def listing_ended(self, executions: int) -> None:
        """A pipeline's listing ended with `executions` to fetch."""
        with self._lock:
            self.listed += 1
            self.to_fetch += executions

    def fetched_one(self) -> None:
        with self._lock:
            self.fetched += 1

    def sample(self) -> None:
        now = self.clock()
        with self._lock:
            self._samples.append(
                (now, self.fetched, self.stats.attempts.total(), self.stats.throttles.total())
            )
            while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW_S:
                self._samples.popleft()

    def estimate(self) -> tuple[int, bool]:
        """(executions to fetch in all, whether that is exact: every pipeline listed)."""
        with self._lock:
            unlisted = self.pipelines - self.listed
            if not unlisted:
                return self.to_fetch, True
            mean = self.to_fetch / self.listed if self.listed else 0.0
            return self.to_fetch + round(mean * unlisted), False

    def line(self) -> str:
        """executions 1,234 / ~5,600 · 18.2 req/s · 3 throttles/min · ETA ~4 min 10 s"""
        self.sample()
        total, exact = self.estimate()
        with self._lock:
            (t0, f0, a0, h0), (t1, f1, a1, h1) = self._samples[0], self._samples[-1]
            fetched, listed = self.fetched, self.listed
        span = t1 - t0
        parts = [f"executions {fetched:,} / {'' if exact else '~'}{total:,}"]
        if not exact:
            parts[0] += f" ({listed} of {self.pipelines} pipelines listed)"
        if span <= 0:
            return parts[0]
        parts += [f"{(a1 - a0) / span:.1f} req/s", f"{(h1 - h0) * 60 / span:.0f} throttles/min"]
        speed = (f1 - f0) / span
        if listed and speed > 0:
            eta = duration(max(0, total - fetched) / speed)
            parts.append(f"ETA {'' if exact else '~'}{eta}")
        return " · ".join(parts)
