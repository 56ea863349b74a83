"""The client seam: boto3 clients with standard retries, a pacer (recorder/pacing.py) and
per-operation call counts.

Credentials come from boto3's default chain only (and, for the accounts of
`--role-arn`, from STS AssumeRole with those: recorder/accounts.py). A run makes one
Session per account and region and its clients once, in the main thread; the worker
threads share the clients (boto3 clients are thread-safe, sessions are not).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field

import boto3
import botocore
from botocore.config import Config
from botocore.retries import quota as botocore_quota
from botocore.retries import standard as botocore_standard

from recorder.pacing import Pacer

log = logging.getLogger("cprec.client")

MAX_ATTEMPTS = 10  # botocore's max_attempts counts retries: 11 attempts at most
CONNECT_TIMEOUT_S = 10  # botocore's default is 60 s per attempt
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
    _told: bool = field(default=False, repr=False)

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
            self._tell_once(event_name, type(caught_exception).__name__)
            return
        if response is None:
            return
        http, parsed = response
        code = (parsed or {}).get("Error", {}).get("Code")
        if code in THROTTLE_CODES or http.status_code == 429:
            self._count(self.throttles, event_name)
            self._tell_once(event_name, code or "HTTP 429")
        elif http.status_code >= 500:
            self._count(self.transient, event_name)
            self._tell_once(event_name, f"HTTP {http.status_code}")

    def _tell_once(self, event_name: str, why: str) -> None:
        """Say what is retried the first time anything is, so a slow start is explained."""
        with self._lock:
            if self._told:
                return
            self._told = True
        log.warning(
            "retrying %s after %s (with backoff, a bounded number of times, "
            "slowing down as AWS asks)",
            event_name.rsplit(".", 1)[-1],
            why,
        )


class UnlimitedRetryQuota(botocore_quota.RetryQuota):
    """A retry quota that grants every retry (release and capacity work as botocore's)."""

    def acquire(self, capacity_amount) -> bool:
        return True


def lift_retry_quota(client) -> None:
    """Make `client`'s retry quota grant every retry; raise if it cannot be found.

    In 'standard' and 'adaptive' modes botocore gives each client one token bucket,
    `botocore.retries.quota.RetryQuota` (500 units), held by a `RetryQuotaChecker` inside
    the `RetryHandler` that `botocore.retries.standard.register_retry_handler` registers
    on `needs-retry.<service>` (unique id `retry-config-<service>`). Every retry takes 5
    units (throttling) or 14 (5xx, broken connection); only successes give units back.
    Once the bucket is empty `RetryHandler.needs_retry` retries no call of the client at
    all, whatever its attempt count: under sustained throttling a run's later calls
    fail at their first error. Config has no switch for it (`retries` takes only `mode`,
    `max_attempts`, `total_max_attempts`), hence this by hand: botocore's own handler is
    kept (retry conditions, max attempts, backoff; the adaptive rate limiter is a
    separate handler) and only its quota object is swapped. Relies on botocore
    internals (the emitter's `_unique_id_handlers`, `RetryHandler._retry_quota`,
    `RetryQuotaChecker._quota`); if they change, client creation fails here rather
    than silently keeping the quota.
    """
    service = client.meta.service_model.service_id.hyphenize()
    unique_id = f"retry-config-{service}"
    try:
        registered = client.meta.events._emitter._unique_id_handlers[unique_id]["handler"]
        handler = registered.__self__
        checker = handler._retry_quota
        quota = checker._quota
    except (AttributeError, KeyError, TypeError) as e:
        raise RuntimeError(
            f"botocore {botocore.__version__}: cannot find the retry quota of the {service} "
            f"client ({unique_id}: {e!r}); recorder/client.py must be adapted"
        ) from e
    if not (
        isinstance(handler, botocore_standard.RetryHandler)
        and isinstance(checker, botocore_standard.RetryQuotaChecker)
        and isinstance(quota, botocore_quota.RetryQuota)
    ):
        raise RuntimeError(
            f"botocore {botocore.__version__}: unexpected retry handler of the {service} client "
            f"({type(handler).__name__}, {type(checker).__name__}, {type(quota).__name__}); "
            "recorder/client.py must be adapted"
        )
    checker._quota = UnlimitedRetryQuota()


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
    max_attempts: int = MAX_ATTEMPTS,
    credentials: dict[str, str | None] | None = None,
    paced: bool = True,
):
    """A boto3 client with standard retries, no retry quota (see lift_retry_quota) and its
    own Pacer (recorder/pacing.py: one per client, so one per account and region, shared
    by every worker), from `session` (or a new one for profile and region); counted into
    `stats` when given. `credentials` (aws_access_key_id, ...) override the session's.
    `paced=False`: botocore's adaptive mode instead (STS, called once)."""
    config = Config(
        retries={"mode": "standard" if paced else "adaptive", "max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT_S,
        max_pool_connections=max(10, max_pool_connections),
    )
    session = session or boto3.Session(profile_name=profile, region_name=region)
    client = session.client(service, region_name=region, endpoint_url=endpoint_url, config=config,
                            **(credentials or {}))  # fmt: skip
    lift_retry_quota(client)
    if paced:
        client.cprec_pacer = Pacer()
        client.cprec_pacer.attach(client, THROTTLE_CODES)
    if stats is not None:
        stats.attach(client)
    return client
