"""`Account`: one simulated AWS account/region, its pipelines, and its clock.

The account holds a deterministic timeline per pipeline (built lazily, on
first use) and a clock. `call()` answers an operation exactly as the HTTP
server would; `advance()` only moves the clock, so executions start, progress
and finish by being seen later on the same plan. The seeds scenario is
`fixtures.SeedAccount`, a subclass built by whoever wants it: `fixtures` imports
this module, so this one does not import `fixtures`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from recorder.simulator import projection
from recorder.simulator.api import Operations
from recorder.simulator.definitions import DAY, PipelineSpec, make_spec
from recorder.simulator.names import pipeline_names
from recorder.simulator.protocol import PIPELINE_NAME, RETENTION_S, ApiError, validate
from recorder.simulator.timeline import Timeline


def default_now() -> datetime:
    """Today, 00:00 UTC."""
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, tzinfo=UTC)


class Account:
    """A CodePipeline account: `pipelines` pipelines with `days` days of history before `now`."""

    def __init__(
        self,
        pipelines: int = 20,
        days: int = 30,
        seed: int = 7,
        now: datetime | None = None,
        account_id: str = "123456789012",
        region: str = "us-east-1",
        names: list[str] | None = None,
        rate: float = 6.0,
    ):
        now = now or default_now()
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if days < 0 or rate < 0 or pipelines < 0:
            raise ValueError("pipelines, days and rate must not be negative")
        self.seed = seed
        self.days = days
        self.rate = rate
        self.account_id = account_id
        self.region = region
        self._now = round(now.timestamp(), 3)
        self._born = self._now  # the clock at creation: history covers `days` before it
        self.history_start = self._now - days * DAY
        names = list(names) if names is not None else pipeline_names(pipelines, seed)
        bad = [n for n in names if not PIPELINE_NAME.fullmatch(n)]
        if bad or len(set(names)) != len(names):
            raise ValueError(f"pipeline names must be unique and match [A-Za-z0-9.@_-]: {bad}")
        self._names = names
        self._index = {n: i for i, n in enumerate(names)}
        self._deleted: set[str] = set()
        self._specs: dict[str, PipelineSpec] = {}
        self._timelines: dict[str, Timeline] = {}
        self._ops = Operations(self)
        self.lock = threading.RLock()

    # -- clock ---------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now, UTC)

    def advance(self, minutes: float = 0.0, *, hours: float = 0.0, days: float = 0.0) -> datetime:
        """Move the clock forward; returns the new `now`."""
        delta = timedelta(minutes=minutes, hours=hours, days=days).total_seconds()
        if delta < 0:
            raise ValueError("the clock only moves forward")
        with self.lock:
            self._now = round(self._now + delta, 3)
        return self.now

    # -- pipelines -----------------------------------------------------------

    def pipeline_names(self) -> list[str]:
        """Names of the pipelines that exist (not deleted), in creation order."""
        return [n for n in self._names if n not in self._deleted]

    def delete_pipeline(self, name: str) -> None:
        with self.lock:
            self._pipeline(name)
            self._deleted.add(name)

    def _spec(self, name: str) -> PipelineSpec:
        spec = self._specs.get(name)
        if spec is None:
            spec = make_spec(self.seed, self._index[name], name, self.history_start, self._born,
                             self.account_id, self.region)  # fmt: skip
            self._specs[name] = spec
        return spec

    def _pipeline(self, name: str) -> tuple[PipelineSpec, Timeline]:
        if name not in self._index or name in self._deleted:
            raise ApiError(
                "PipelineNotFoundException",
                f"Account '{self.account_id}' does not have a pipeline with name '{name}'",
            )
        spec = self._spec(name)
        tl = self._timelines.get(name)
        if tl is None:
            tl = Timeline(spec, self.seed, self.history_start, self.rate)
            self._timelines[name] = tl
        return spec, tl

    def timeline(self, name: str) -> Timeline:
        """The full plan of one pipeline (generated up to the clock)."""
        with self.lock:
            _, tl = self._pipeline(name)
            tl.ensure(self._now)
            return tl

    # -- the API -------------------------------------------------------------

    def call(self, operation: str, params: dict | None = None) -> dict:
        """The JSON body the server returns for `operation`; ApiError for modeled errors."""
        params = {} if params is None else params
        validate(operation, params)
        with self.lock:
            return self._ops.handler(operation)(params)

    def raw_body(self, operation: str, params: dict) -> bytes | None:
        """Bytes to serve verbatim instead of `call()`'s JSON, if any (fixture scenarios)."""
        return None

    # -- direct enumeration (benchmarks, collector tests) ----------------------

    def all_executions(self, name: str) -> list[dict]:
        """Every execution visible now (GetPipelineExecution shape), newest first, no paging."""
        with self.lock:
            spec, tl = self._pipeline(name)
            now = self._now
            cutoff = now - RETENTION_S
            return [
                projection.execution_detail(spec, ex, now)
                for ex in reversed(tl.visible(now))
                if ex.start >= cutoff
            ]

    def all_action_executions(self, name: str) -> list[dict]:
        """Every action execution visible now (ListActionExecutions shape), newest first."""
        return self._all_runs(name, rules=False)

    def all_rule_executions(self, name: str) -> list[dict]:
        """Every rule execution visible now (ListRuleExecutions shape), newest first."""
        return self._all_runs(name, rules=True)

    def _all_runs(self, name: str, *, rules: bool) -> list[dict]:
        with self.lock:
            spec, tl = self._pipeline(name)
            now = self._now
            tl.ensure(now)
            idx = tl.index()
            items = idx.rules if rules else idx.actions
            render = projection.rule_detail if rules else projection.action_detail
            cutoff = now - RETENTION_S
            return [render(spec, ex, run, now) for start, _, ex, run in reversed(items)
                    if start <= now and ex.start >= cutoff]  # fmt: skip
