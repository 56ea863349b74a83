"""The client seam: boto3 clients with adaptive retries and per-operation call counts.

Credentials come from boto3's default chain only. A run makes one Session per region
and its clients once, in the main thread; the worker threads share the clients
(boto3 clients are thread-safe, sessions are not).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

import boto3
from botocore.config import Config

MAX_ATTEMPTS = 10
THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)


@dataclass
class CallStats:
    """API traffic as botocore sees it, counted by operation.

    `calls` are logical API calls (one per client method call), `attempts` are HTTP
    requests sent (calls plus retries), `throttles` and `transient` (5xx and broken
    connections) are the attempt outcomes that asked for a retry.
    """

    calls: Counter = field(default_factory=Counter)
    attempts: Counter = field(default_factory=Counter)
    throttles: Counter = field(default_factory=Counter)
    transient: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def retries(self) -> int:
        return self.attempts.total() - self.calls.total()

    def attach(self, client) -> None:
        events = client.meta.events
        service = client.meta.service_model.service_id.hyphenize()
        events.register(f"before-call.{service}", self._on_call)
        events.register(f"before-send.{service}", self._on_send)
        events.register(f"needs-retry.{service}", self._on_response)

    def _count(self, counter: Counter, event_name: str) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        with self._lock:
            counter[operation] += 1

    def _on_call(self, event_name: str, **_kw) -> None:
        self._count(self.calls, event_name)

    def _on_send(self, event_name: str, **_kw) -> None:
        self._count(self.attempts, event_name)

    def _on_response(self, event_name: str, response=None, caught_exception=None, **_kw) -> None:
        # Must return None: botocore takes the first non-None answer as the retry delay.
        if caught_exception is not None:
            self._count(self.transient, event_name)
            return
        if response is None:
            return
        http, parsed = response
        code = (parsed or {}).get("Error", {}).get("Code")
        if code in THROTTLE_CODES or http.status_code == 429:
            self._count(self.throttles, event_name)
        elif http.status_code >= 500:
            self._count(self.transient, event_name)


def default_region(profile: str | None) -> str | None:
    """The region boto3's configuration chain picks; raises ProfileNotFound for a bad profile."""
    return boto3.Session(profile_name=profile).region_name


def make_client(
    service: str,
    *,
    region: str | None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
    stats: CallStats | None = None,
    max_pool_connections: int = 10,
):
    """A boto3 client with adaptive retries, from `session` (or a new one for profile and
    region); counted into `stats` when given."""
    config = Config(
        retries={"mode": "adaptive", "max_attempts": MAX_ATTEMPTS},
        max_pool_connections=max(10, max_pool_connections),
    )
    session = session or boto3.Session(profile_name=profile, region_name=region)
    client = session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)
    if stats is not None:
        stats.attach(client)
    return client
