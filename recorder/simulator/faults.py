"""Fault injection: which calls the server answers with a failure instead of the truth.

Each fault is switched on by its own field; draws come from a separate seeded
RNG so a run with the same faults and the same call sequence fails the same way.
Bursts count CodePipeline calls from the server's start: the first
`throttle_burst` calls are throttled, the next `error_burst` get a 500.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from recorder.simulator.ratelimit import RateLimiter, Rates


@dataclass
class Faults:
    throttle_rate: float = 0.0  # fraction of calls answered ThrottlingException (HTTP 400)
    throttle_burst: int = 0  # the first N calls are throttled
    error_rate: float = 0.0  # fraction answered InternalFailure (HTTP 500)
    error_burst: int = 0  # the N calls after the throttle burst get a 500
    latency_ms: float = 0.0  # added to every call
    drop_rate: float = 0.0  # connection closed after the headers and part of the body
    access_denied: bool = False  # every CodePipeline call -> AccessDeniedException
    vanish: tuple[str, ...] = ()  # listed, but every other call -> PipelineNotFoundException
    seed: int = 0
    # Rate limits (recorder/simulator/ratelimit.py): requests/s per account, region and
    # operation (0: none), the bucket's size (0: twice the rate), operations whose rate
    # differs, and the share of every bucket a noisy neighbour spends.
    api_rate: float = 0.0
    api_burst: float = 0.0
    api_rates: tuple[tuple[str, float], ...] = ()
    neighbour_share: float = 0.0

    def __post_init__(self) -> None:
        for name in ("throttle_rate", "error_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        for name in ("throttle_burst", "error_burst", "latency_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        self.vanish = tuple(self.vanish)
        self.api_rates = tuple((op, float(r)) for op, r in self.api_rates)
        self.rates = Rates(self.api_rate, self.api_burst, dict(self.api_rates),
                           self.neighbour_share)  # fmt: skip


# (code, message, HTTP status) of each injected error, as AWS sends them.
THROTTLE = ("ThrottlingException", "Rate exceeded", 400)
INTERNAL = ("InternalFailure", "We encountered an internal error. Please try again.", 500)


class FaultPlan:
    """Decides, call by call, which fault (if any) applies."""

    def __init__(self, faults: Faults):
        self.faults = faults
        self.limiter = RateLimiter(faults.rates)
        self._rng = random.Random(f"faults/{faults.seed}")
        self._count = 0
        self._lock = threading.Lock()

    def before(
        self, operation: str, params: dict, account_id: str, region: str = "us-east-1"
    ) -> tuple[str, tuple[str, str, int]] | None:
        """(fault kind, (code, message, status)) to answer instead, or None."""
        f = self.faults
        if not self.limiter.allow(account_id, region, operation):
            return "rate", THROTTLE
        with self._lock:
            self._count += 1
            n = self._count
            throttle_draw, error_draw = self._rng.random(), self._rng.random()
        if f.access_denied:
            message = (
                f"User: arn:aws:iam::{account_id}:user/simulator is not authorized to perform: "
                f"codepipeline:{operation} because no identity-based policy allows the "
                f"codepipeline:{operation} action"
            )
            return "access_denied", ("AccessDeniedException", message, 400)
        if n <= f.throttle_burst or throttle_draw < f.throttle_rate:
            return "throttle", THROTTLE
        if n <= f.throttle_burst + f.error_burst or error_draw < f.error_rate:
            return "error", INTERNAL
        name = params.get("name") or params.get("pipelineName")
        if operation != "ListPipelines" and name in f.vanish:
            return "vanish", (
                "PipelineNotFoundException",
                f"Account '{account_id}' does not have a pipeline with name '{name}'",
                400,
            )
        return None

    def drop(self) -> bool:
        if not self.faults.drop_rate:
            return False
        with self._lock:
            return self._rng.random() < self.faults.drop_rate
