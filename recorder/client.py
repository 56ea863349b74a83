"""The client seam: boto3 clients with standard retries, a pacer (recorder/pacing.py) and
per-operation call counts.

Credentials come from boto3's default chain only (and, for the accounts of
`--role-arn`, from STS AssumeRole with those: recorder/accounts.py). A run makes one
Session per account and region and its clients once, in the main thread; the worker
threads share the clients (boto3 clients are thread-safe, sessions are not).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries import quota as botocore_quota
from botocore.retries import standard as botocore_standard

from recorder.pacing import Pacers

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


class PacedBackoff(botocore_standard.ExponentialBackoff):
    """botocore's backoff, but the first retries of a throttle are at once once the
    client's pacers pace.

    botocore sleeps rand(0, 1) x 2^i s before the i-th retry of a throttle (50 ms x 2^i
    for a 5xx or a broken connection). That protects the service when nothing else
    does; with the pacers pacing (after the first throttled window of an operation) a
    retry waits for a token of its operation's pacer like any attempt, so the rate the
    account sees stays the pacer's, and the sleep only stalls the worker. (An operation
    too rarely called to fill a pacer's window is not paced itself: its calls retry at
    once at most FREE_RETRIES times each.) Under 30 % of attempts throttled at random,
    the sleep was most of a run's time (bench/faults.py: 172 s, against 8.7 s clean).
    The first FREE_RETRIES retries of a call are at once; later ones sleep as
    botocore's first ones would (rand x 2^(i - FREE_RETRIES)), so a call that meets
    throttle after throttle (a pacer still far above the granted rate, on its first
    windows) spends its attempts over minutes, not milliseconds. Before any pacer
    paces, for every other error, and when the answer says when to retry
    (x-amz-retry-after): botocore's."""

    FREE_RETRIES = 3

    def __init__(self, pacers: Pacers, **kw) -> None:
        super().__init__(**kw)
        self._pacers = pacers

    def delay_amount(self, context) -> float:
        if (
            self._pacers.pacing()
            and self._throttling_detector.is_throttling_error_from_context(context)
            and self._get_retry_after_delay(context) is None
        ):
            if context.attempt_number <= self.FREE_RETRIES:
                return 0.0
            shifted = copy.copy(context)
            shifted.attempt_number -= self.FREE_RETRIES
            return super().delay_amount(shifted)
        return super().delay_amount(context)


class PacedRetryConditions(botocore_standard.StandardRetryConditions):
    """botocore's retry conditions, but while the client's pacers pace a throttle is
    retried up to THROTTLE_ATTEMPTS attempts, not max_attempts.

    Eleven attempts are few when every attempt waits for the pacer and a throttle's
    first retries go at once: against a bucket with 30 % throttled at random on top, a
    call now and then met 11 throttles in a row and its pipeline failed for the run
    (bench/ratelimit.py, 12 x 30 at 5 req/s). The pacer bounds the rate whatever the
    attempts, and PacedBackoff spaces the later ones (30 attempts: ~4 minutes of
    waiting on average before a call gives up). Errors other than throttles keep
    botocore's max_attempts (an endpoint that does not answer is told in 11)."""

    THROTTLE_ATTEMPTS = 30

    def __init__(self, pacers: Pacers, detector, max_attempts: int) -> None:
        super().__init__(max_attempts=max_attempts)
        self._pacers, self._detector = pacers, detector

    def is_retryable(self, context) -> bool:
        if (
            context.attempt_number < self.THROTTLE_ATTEMPTS
            and self._pacers.pacing()
            and self._detector.is_throttling_error_from_context(context)
        ):
            return True
        return super().is_retryable(context)


def tune_retries(client, pacers: Pacers | None = None) -> None:
    """Make `client`'s retry quota grant every retry and, with `pacers`, retry throttles
    at once a few times (PacedBackoff) and more times (PacedRetryConditions) while they
    pace; raise if botocore's parts are not where they are expected.

    The quota: in 'standard' and 'adaptive' modes botocore gives each client one token
    bucket, `botocore.retries.quota.RetryQuota` (500 units), held by a
    `RetryQuotaChecker` inside the `RetryHandler` that
    `botocore.retries.standard.register_retry_handler` registers on
    `needs-retry.<service>` (unique id `retry-config-<service>`). Every retry takes 5
    units (throttling) or 14 (5xx, broken connection); only successes give units back.
    Once the bucket is empty `RetryHandler.needs_retry` retries no call of the client at
    all, whatever its attempt count: under sustained throttling a run's later calls
    fail at their first error. Config has no switch for it or for the backoff
    (`retries` takes only `mode`, `max_attempts`, `total_max_attempts`), hence this by
    hand: botocore's own handler is kept (the adaptive rate limiter is a separate
    handler) and only its quota, backoff and retry conditions are swapped, each for a
    subclass of botocore's own that defers to it but where said above. Relies on
    botocore internals (the emitter's
    `_unique_id_handlers`, `RetryHandler._retry_quota` and `._retry_policy`,
    `RetryQuotaChecker._quota`, `RetryPolicy._retry_backoff` and `._retry_checker`,
    `StandardRetryConditions._max_attempts_checker`); if they change, client
    creation fails here rather than silently keeping botocore's.
    """
    service = client.meta.service_model.service_id.hyphenize()
    unique_id = f"retry-config-{service}"
    try:
        registered = client.meta.events._emitter._unique_id_handlers[unique_id]["handler"]
        handler = registered.__self__
        checker = handler._retry_quota
        quota = checker._quota
        policy = handler._retry_policy
        backoff = policy._retry_backoff
        detector = backoff._throttling_detector
        checker_of_attempts = policy._retry_checker._max_attempts_checker
        max_attempts = checker_of_attempts._max_attempts
    except (AttributeError, KeyError, TypeError) as e:
        raise RuntimeError(
            f"botocore {botocore.__version__}: cannot find the retry quota of the {service} "
            f"client ({unique_id}: {e!r}); recorder/client.py must be adapted"
        ) from e
    if not (
        isinstance(handler, botocore_standard.RetryHandler)
        and isinstance(checker, botocore_standard.RetryQuotaChecker)
        and isinstance(quota, botocore_quota.RetryQuota)
        and isinstance(policy, botocore_standard.RetryPolicy)
        and type(backoff) is botocore_standard.ExponentialBackoff
        and isinstance(detector, botocore_standard.ThrottlingErrorDetector)
        and type(policy._retry_checker) is botocore_standard.StandardRetryConditions
        and isinstance(max_attempts, int)
    ):
        raise RuntimeError(
            f"botocore {botocore.__version__}: unexpected retry handler of the {service} client "
            f"({type(handler).__name__}, {type(checker).__name__}, {type(quota).__name__}, "
            f"{type(backoff).__name__}); recorder/client.py must be adapted"
        )
    checker._quota = UnlimitedRetryQuota()
    if pacers is not None:
        policy._retry_backoff = PacedBackoff(pacers, service_name=service,
                                             throttling_detector=detector)  # fmt: skip
        policy._retry_checker = PacedRetryConditions(pacers, detector, max_attempts)


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
    """A boto3 client with standard retries, no retry quota (see tune_retries) and its
    own Pacers (recorder/pacing.py: one per client, so one per account and region, a
    Pacer per operation, shared by every worker), from `session` (or a new one for
    profile and region); counted into `stats` when given. `credentials`
    (aws_access_key_id, ...) override the session's. `paced=False`: botocore's adaptive
    mode instead."""
    config = Config(
        retries={"mode": "standard" if paced else "adaptive", "max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT_S,
        max_pool_connections=max(10, max_pool_connections),
    )
    session = session or boto3.Session(profile_name=profile, region_name=region)
    client = session.client(service, region_name=region, endpoint_url=endpoint_url, config=config,
                            **(credentials or {}))  # fmt: skip
    pacers = Pacers() if paced else None
    tune_retries(client, pacers)
    if pacers is not None:
        client.cprec_pacers = pacers
        pacers.attach(client, THROTTLE_CODES)
    if stats is not None:
        stats.attach(client)
    return client


def describe(e: Exception) -> str:
    """An AWS error as one line, `Code: Message` (what run rows, logs and errors show)."""
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": ")
    return f"{type(e).__name__}: {e}"
