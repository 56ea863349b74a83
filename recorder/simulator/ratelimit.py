"""Request rate limits as AWS enforces them: token buckets, not random draws.

AWS throttles each account's requests per region and per API with token buckets
(the EC2 and Service Quotas documentation describe "requests per second" with "an
additional burst"; CodePipeline's quota page lists resource quotas only and documents
no API rate). A request takes a token from its bucket or is answered
ThrottlingException; the bucket refills at `rate` tokens per second up to `burst`.
Every client of the account spends from the same buckets, so one collector's worker
threads (and its neighbours) share them.

`neighbour_share` models the other tools of the account (a dashboard, a CI bot, the
console) spending that share of each bucket's rate steadily: they take their share of
every token as it arrives, so a collector gets at most the rest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rates:
    """Per account, region and operation: `rate` requests/s (0: unlimited), `burst`
    tokens at most (0: twice the rate), `per_operation` rates where an API differs."""

    rate: float = 0.0
    burst: float = 0.0
    per_operation: Mapping[str, float] = field(default_factory=dict)
    neighbour_share: float = 0.0

    def __post_init__(self) -> None:
        if self.rate < 0 or self.burst < 0 or any(r <= 0 for r in self.per_operation.values()):
            raise ValueError("API rates and bursts must be positive")
        if not 0.0 <= self.neighbour_share < 1.0:
            raise ValueError(f"the neighbour's share must be in [0, 1), got {self.neighbour_share}")

    @property
    def limited(self) -> bool:
        return self.rate > 0 or bool(self.per_operation)

    def of(self, operation: str) -> tuple[float, float] | None:
        """(rate, burst) of an operation's bucket, None when unlimited."""
        rate = self.per_operation.get(operation, self.rate)
        if rate <= 0:
            return None
        burst = self.burst if self.burst > 0 and operation not in self.per_operation else 2 * rate
        return rate, max(burst, 1.0)


class TokenBucket:
    """Starts full. `take` is non-blocking: a server throttles, it does not queue."""

    def __init__(self, rate: float, burst: float, neighbour_share: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.rate, self.burst, self.share, self.clock = rate, burst, neighbour_share, clock
        self.tokens = burst
        self.last = clock()
        self.taken = self.refused = 0
        self.neighbour_taken = 0.0

    def take(self) -> bool:
        now = self.clock()
        elapsed, self.last = max(0.0, now - self.last), now
        # The neighbour takes its share of every token as it arrives (its demand is
        # steady), so what refills for us is the rest.
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate * (1.0 - self.share))
        self.neighbour_taken += elapsed * self.rate * self.share
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.taken += 1
            return True
        self.refused += 1
        return False


class RateLimiter:
    """Every bucket of the simulated accounts, made on first use."""

    def __init__(self, rates: Rates, clock: Callable[[], float] = time.monotonic) -> None:
        self.rates, self.clock = rates, clock
        self.buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def allow(self, account_id: str, region: str, operation: str) -> bool:
        spec = self.rates.of(operation)
        if spec is None:
            return True
        key = (account_id, region, operation)
        with self._lock:
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = TokenBucket(*spec, self.rates.neighbour_share,
                                                         self.clock)  # fmt: skip
            return bucket.take()
