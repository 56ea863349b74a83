"""The execution history of one pipeline: a deterministic, lazily extended timeline.

Each execution is planned in full when it is created (every action attempt with
its start, end and outcome); what the API shows is that plan seen at the
account's clock (see `projection.py`). Days are generated in order, each from
its own RNG seeded by (seed, pipeline, day), on demand as the clock needs them,
so any pipeline can be built on its own and the result never depends on when
it was built. Executions interact only with the one before them
(SUPERSEDED cuts it short, QUEUED waits for it), and never before the newer
one's start, so extending the timeline never changes what was already visible.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_right
from dataclasses import dataclass, field

from recorder.simulator.definitions import (
    DAY,
    ActionDef,
    PipelineSpec,
    RuleDef,
    StageDef,
    Version,
    lognormal,
)

INF = math.inf
MAX_APPROVAL_S = 3 * DAY

_ERRORS = {
    "CodeBuild": [
        ("JobFailed", "Build terminated with state: FAILED. Phase: BUILD, Code: "
         "COMMAND_EXECUTION_ERROR, Message: Error while executing command: make test. "
         "Reason: exit status 2"),
        ("JobFailed", "Build terminated with state: FAILED. Phase: INSTALL, Code: "
         "COMMAND_EXECUTION_ERROR, Message: Error while executing command: npm ci. "
         "Reason: exit status 1"),
        ("JobFailed", "Build terminated with state: TIMED_OUT."),
    ],
    "CodeDeploy": [
        ("JobFailed", "Deployment failed: too many individual instances failed "
         "deployment, too few healthy instances are available for deployment."),
    ],
    "ECS": [
        ("JobFailed", "The Amazon ECS service deployment failed: tasks failed to start. "
         "Essential container in task exited."),
    ],
    "CloudFormation": [
        ("JobFailed", "Stack UPDATE_ROLLBACK_COMPLETE: Resource handler returned message: "
         "\"Rate exceeded\" (RequestToken: 3f1d, HandlerErrorCode: Throttling)"),
    ],
    "Lambda": [("JobFailed", "Smoke test failed: GET /health returned 503")],
    "Manual": [("Rejected", "The approval request was rejected.")],
    "CodeStarSourceConnection": [
        ("ConnectionError", "Unable to use Connection: The provided connection is not "
         "available. Check the connection status in the Developer Tools console."),
    ],
    "S3": [("AccessDenied", "Access Denied (Service: S3, Status Code: 403)")],
}  # fmt: skip

_COMMITS = [
    "Fix flaky retry in payment client", "Bump dependencies", "Add metrics for queue depth",
    "Refactor handler wiring", "Update README", "Tune autoscaling thresholds",
    "Feature: export to CSV", "Hotfix: null check in serializer", "Merge pull request #412",
    "Revert \"Enable new cache\"",
]  # fmt: skip
_USERS = ["alice", "bob", "carol", "dave", "erin"]


def new_id(rng: random.Random) -> str:
    return uuid_text(rng.getrandbits(128))


def uuid_text(n: int) -> str:
    """A 128-bit number in UUID layout; text order equals number order."""
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid_number(text: str) -> int:
    return int(text.replace("-", ""), 16)


class ActionRun:
    """One action execution (an attempt): its full plan, final status included."""

    __slots__ = ("n", "stage", "action", "attempt", "start", "end", "status", "error", "user")

    def __init__(self, n, stage, action, attempt, start, end, status, error, user=None):
        self.n: int = n  # the id as a number; text made only when shown
        self.stage: str = stage
        self.action: ActionDef = action
        self.attempt: int = attempt
        self.start: float = start
        self.end: float = end
        self.status: str = status  # final: Succeeded | Failed | Abandoned
        self.error: tuple[str, str] | None = error
        self.user: str | None = user  # approver

    @property
    def id(self) -> str:
        return uuid_text(self.n)


class RuleRun:
    __slots__ = ("n", "stage", "rule", "kind", "start", "end", "status", "error")

    def __init__(self, n, stage, rule, kind, start, end, status, error):
        self.n: int = n
        self.stage: str = stage
        self.rule: RuleDef = rule
        self.kind: str = kind  # beforeEntry | onSuccess
        self.start: float = start
        self.end: float = end
        self.status: str = status
        self.error: tuple[str, str] | None = error

    @property
    def id(self) -> str:
        return uuid_text(self.n)


@dataclass
class Revision:
    action: str
    artifact: str
    revision_id: str
    change_id: str
    summary: str
    url: str
    created: float


@dataclass
class Execution:
    id: str
    start: float
    version: int
    type: str  # STANDARD | ROLLBACK
    trigger_type: str
    trigger_detail: str
    mode: str
    target: str | None = None  # rollback target execution id
    events: list[tuple[float, str]] = field(default_factory=list)  # status changes
    actions: list[ActionRun] = field(default_factory=list)
    rules: list[RuleRun] = field(default_factory=list)
    revisions: list[Revision] = field(default_factory=list)
    variables: list[tuple[str, str]] = field(default_factory=list)
    retries: list[tuple[float, str, str]] = field(default_factory=list)  # (t, stage, trigger)
    waiting: tuple[str, float] | None = None  # (stage, since): held at a disabled transition
    stop_reason: str | None = None
    failed_at: tuple[str, str] | None = None  # (stage, action or rule) that failed

    @property
    def end(self) -> float:
        """When the plan reaches a terminal status (inf while it waits forever)."""
        t, status = self.events[-1]
        return t if status not in ("InProgress", "Stopping") else INF

    def status_at(self, now: float) -> str | None:
        status = None
        for t, s in self.events:
            if t > now:
                break
            status = s
        return status


class Timeline:
    """All executions of one pipeline, generated day by day as the clock needs them."""

    def __init__(self, spec: PipelineSpec, seed: int, history_start: float, rate: float):
        self.spec = spec
        self.seed = seed
        self.history_start = history_start
        self.rate = rate
        self.executions: list[Execution] = []
        self.starts: list[float] = []
        self.by_id: dict[str, Execution] = {}
        self._day = int(max(history_start, spec.created) // DAY)
        self._pending: list[tuple[float, int, str, str]] = []  # rollbacks: (t, seq, src, target)
        self._seq = 0
        self.revision = 0  # bumped whenever the timeline changes, for caches
        self._index: RunIndex | None = None

    @property
    def generated_until(self) -> float:
        return self._day * DAY

    def ensure(self, t: float) -> None:
        """Generate every day up to and including the one holding `t`."""
        while self._day * DAY <= t:
            self._generate_day(self._day)
            self._day += 1
            self.revision += 1

    def visible(self, now: float) -> list[Execution]:
        """Executions started by `now`, oldest first."""
        self.ensure(now)
        return self.executions[: bisect_right(self.starts, now)]

    def index(self) -> RunIndex:
        """Executions, action and rule executions sorted by (start, id), cached."""
        if self._index is None or self._index.revision != self.revision:
            self._index = RunIndex(self)
        return self._index

    # -- generation ---------------------------------------------------------

    def _generate_day(self, day: int) -> None:
        spec = self.spec
        rng = random.Random(f"day/{self.seed}/{spec.index}/{day}")
        lo, hi = day * DAY, (day + 1) * DAY
        queue: list[tuple[float, int, str, str]] = []
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
        lam = self.rate * (1.2 if weekday < 5 else 0.5)
        for _ in range(_poisson(rng, lam)):
            if rng.random() < 0.75:
                t = lo + rng.uniform(8 * 3600, 19 * 3600)
            else:
                t = lo + rng.uniform(0, DAY)
            queue.append((round(t, 3), self._next_seq(), "", ""))
        if lo <= spec.created + 60 < hi and spec.created >= self.history_start:
            queue.append((round(spec.created + 60, 3), self._next_seq(), "create", ""))
        while self._pending and self._pending[0][0] < hi:
            queue.append(heapq.heappop(self._pending))
        heapq.heapify(queue)
        floor = max(self.history_start, spec.created)
        while queue:
            t, _, src, target = heapq.heappop(queue)
            if t < floor:
                continue
            if target:
                source = self.by_id[src]
                if source.events[-1][1] != "Failed":
                    continue  # the failed execution was superseded or stopped first
                ex = self._plan(rng, t, "ROLLBACK", source=source, target=target)
            else:
                ex = self._plan(rng, t, "STANDARD", first=src == "create")
            for when, rb_target in self._rollback_requests(ex):
                item = (when, self._next_seq(), ex.id, rb_target)
                heapq.heappush(queue if when < hi else self._pending, item)
            self._append(ex)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _append(self, ex: Execution) -> None:
        prev = self.executions[-1] if self.executions else None
        if prev is not None and ex.mode == "SUPERSEDED":
            _supersede(prev, ex)
        self.executions.append(ex)
        self.starts.append(ex.start)
        self.by_id[ex.id] = ex

    def _rollback_requests(self, ex: Execution) -> list[tuple[float, str]]:
        if ex.type != "STANDARD" or ex.events[-1][1] != "Failed" or not ex.failed_at:
            return []
        stage = self.spec.versions[ex.version - 1].stage(ex.failed_at[0])
        rollback = stage is not None and (
            stage.on_failure == "ROLLBACK"
            or (stage.on_success is not None and ex.failed_at[1] in _rule_names(stage))
        )
        if not rollback:
            return []
        when = ex.events[-1][0]
        for prev in reversed(self.executions):
            if prev.type == "STANDARD" and prev.events[-1][1] == "Succeeded" and prev.end < when:
                return [(round(when + 15.0, 3), prev.id)]
        return []

    def _plan(self, rng, t, kind, *, first=False, source=None, target=None) -> Execution:
        spec = self.spec
        version = spec.version_at(t)
        if kind == "ROLLBACK":
            trig, detail = "AutomatedRollback", source.id
        elif first:
            trig, detail = (
                "CreatePipeline",
                f"arn:aws:iam::{spec.account_id}:user/{rng.choice(_USERS)}",
            )
        else:
            trig, detail = _trigger(rng, spec)
        ex = Execution(new_id(rng), t, version.number, kind, trig, detail, spec.execution_mode)
        ex.target = target
        ex.events.append((t, "InProgress"))
        if kind == "ROLLBACK":
            ex.revisions = list(self.by_id[target].revisions)
        else:
            ex.revisions = _revisions(rng, spec, version, t)
        if spec.pipeline_type == "V2":
            env = "canary" if trig == "StartPipelineExecution" and rng.random() < 0.3 else "prod"
            ex.variables = [("DEPLOY_ENV", env), ("RELEASE_CHANNEL", "stable")]
        begin = t
        if spec.execution_mode == "QUEUED" and self.executions:
            begin = max(t, self.executions[-1].end)
        if kind == "ROLLBACK":
            stages = [s for s in version.stages if s.name == source.failed_at[0]]
        else:
            stages = list(version.stages)
        _run_stages(rng, spec, ex, stages, begin)
        if kind == "STANDARD" and ex.end < INF and rng.random() < 0.015:
            _stop(rng, ex, round(rng.uniform(t + 1.0, max(t + 1.0, ex.end)), 3))
        return ex


def _rule_names(stage: StageDef) -> set[str]:
    return {r.name for c in stage.conditions() for r in c.rules}


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _trigger(rng: random.Random, spec: PipelineSpec) -> tuple[str, str]:
    r = rng.random()
    user = f"arn:aws:iam::{spec.account_id}:user/{rng.choice(_USERS)}"
    if r < 0.2:
        return "StartPipelineExecution", user
    if r < 0.25:
        return "CloudWatchEvent", f"arn:aws:events:{spec.region}:{spec.account_id}:rule/nightly"
    if spec.pipeline_type == "V2":
        return "WebhookV2", spec.connection_arn
    return ("Webhook", spec.connection_arn) if r < 0.8 else ("PollForSourceChanges", "Source")


def _revisions(rng, spec: PipelineSpec, version: Version, t: float) -> list[Revision]:
    revs = []
    for a in version.stages[0].actions:
        created = round(t - rng.uniform(20, 7200), 3)
        if a.provider == "S3":
            rid = f"{rng.getrandbits(128):032x}"[:32]
            revs.append(Revision(a.name, a.outputs[0], rid, f"{rng.getrandbits(64):016x}",
                                 "config.zip uploaded", f"https://s3.console.aws.amazon.com/"
                                 f"s3/object/{a.configuration['S3Bucket']}", created))  # fmt: skip
        else:
            sha = f"{rng.getrandbits(160):040x}"
            msg = rng.choice(_COMMITS)
            summary = f'{{"ProviderType":"GitHub","CommitMessage":"{msg.replace(chr(34), "")}"}}'
            url = f"https://github.com/{spec.repo}/commit/{sha}"
            revs.append(Revision(a.name, a.outputs[0], sha, sha, summary, url, created))
    return revs


def _fail(rng: random.Random, a: ActionDef, p: float) -> tuple[str, str]:
    return rng.choice(_ERRORS.get(a.provider, [("JobFailed", "Action failed.")]))


def _run_action(rng, ex: Execution, stage: str, a: ActionDef, t: float, attempt: int) -> ActionRun:
    dur = a.median_s * math.exp(rng.gauss(0.0, a.sigma))
    if dur < 1.0:
        dur = 1.0
    p = a.fail_p if attempt == 1 else a.fail_p / 2
    error = _fail(rng, a, p) if rng.random() < p else None
    user = None
    if a.provider == "Manual":
        dur = min(dur, MAX_APPROVAL_S)
        user = rng.choice(_USERS)
    elif error:
        dur *= rng.uniform(0.1, 1.0)  # failures come early, on average
    run = ActionRun(rng.getrandbits(128), stage, a, attempt, t, round(t + dur, 3),
                    "Failed" if error else "Succeeded", error, user)  # fmt: skip
    ex.actions.append(run)
    return run


def _run_rules(rng, ex: Execution, stage: StageDef, cond, t: float) -> tuple[float, bool]:
    end, ok = t, True
    for r in cond.rules:
        dur = max(1.0, lognormal(rng, r.median_s, r.sigma))
        failed = rng.random() < r.fail_p
        error = ("RuleFailed", f"Rule {r.name} evaluated to false") if failed else None
        run = RuleRun(rng.getrandbits(128), stage.name, r, cond.kind, t, round(t + dur, 3),
                      "Failed" if failed else "Succeeded", error)  # fmt: skip
        ex.rules.append(run)
        end, ok = max(end, run.end), ok and not failed
        if failed:
            ex.failed_at = (stage.name, r.name)
    return end, ok


def _run_stages(rng, spec: PipelineSpec, ex: Execution, stages: list[StageDef], t: float) -> None:
    """Plan the stages in order from `t`, appending the terminal event (if any)."""
    for stage in stages:
        if (
            spec.disabled_stage == stage.name
            and spec.disabled_at is not None
            and t >= spec.disabled_at
            and ex.type == "STANDARD"
        ):
            ex.waiting = (stage.name, t)
            return  # held at the disabled transition: InProgress until superseded
        if stage.before_entry:
            t, ok = _run_rules(rng, ex, stage, stage.before_entry, t)
            if not ok:
                ex.events.append((t, "Failed"))
                return
        t, ok = _run_stage_actions(rng, ex, stage, t)
        if not ok:
            return
        if stage.on_success:
            t, ok = _run_rules(rng, ex, stage, stage.on_success, t)
            if not ok:
                ex.events.append((t, "Failed"))
                return
    ex.events.append((t, "Succeeded"))


def _run_stage_actions(rng, ex: Execution, stage: StageDef, t: float) -> tuple[float, bool]:
    """Run the groups; on failure retry (automatically or by hand) or fail."""
    groups = stage.groups
    gi, attempt, auto, manual = 0, 1, 0, 0
    todo = groups[0]
    while True:
        runs = [_run_action(rng, ex, stage.name, a, t, attempt) for a in todo]
        end = runs[0].end if len(runs) == 1 else max(r.end for r in runs)
        failed = [r for r in runs if r.error]
        if not failed:
            t = end
            gi += 1
            if gi == len(groups):
                return t, True
            todo = groups[gi]
            continue
        ex.failed_at = (stage.name, failed[0].action.name)
        retryable = stage.actions[0].category != "Approval"
        if stage.on_failure == "RETRY" and auto == 0 and retryable:
            auto += 1
            ex.retries.append((end, stage.name, "AutomatedStageRetry"))
        elif retryable and manual < 2 and rng.random() < 0.25:
            manual += 1
            ex.events.append((end, "Failed"))
            end = round(end + rng.uniform(180, 2700), 3)
            ex.events.append((end, "InProgress"))
            ex.retries.append((end, stage.name, "ManualStageRetry"))
        else:
            ex.events.append((end, "Failed"))
            return end, False
        todo = [r.action for r in failed]  # retryMode FAILED_ACTIONS
        attempt += 1
        t = end


def _stop(rng: random.Random, ex: Execution, t_stop: float) -> None:
    """StopPipelineExecution at `t_stop`: abandon (or wait for) what runs, start nothing new."""
    abandon = rng.random() < 0.5
    ex.actions = [a for a in ex.actions if a.start <= t_stop]
    ex.rules = [r for r in ex.rules if r.start <= t_stop]
    ex.retries = [r for r in ex.retries if r[0] <= t_stop]
    done = t_stop
    for a in ex.actions:
        if a.end > t_stop:
            if abandon:
                a.end, a.status, a.error = round(t_stop + rng.uniform(2, 20), 3), "Abandoned", None
            done = max(done, a.end)
    for r in ex.rules:
        if r.end > t_stop:
            r.end, r.status, r.error = round(t_stop + 1.0, 3), "Abandoned", None
            done = max(done, r.end)
    ex.events = ex.events[:1] + [e for e in ex.events[1:] if e[0] < t_stop]
    ex.events += [(t_stop, "Stopping"), (round(done + 1.0, 3), "Stopped")]
    ex.stop_reason = rng.choice(["Hotfix in flight", "Wrong branch", "Stopped by release manager"])
    ex.waiting = None


def _supersede(a: Execution, b: Execution) -> None:
    """`b` starts while `a` still runs (SUPERSEDED mode): `a` finishes what it is
    doing, starts nothing new, and ends Superseded. A pending approval of `a`
    ends (Abandoned) when `b` reaches the same approval."""
    tb = b.start
    if a.end <= tb or a.status_at(tb) != "InProgress":
        if a.status_at(tb) == "Failed" and a.end > tb:  # a pending manual retry never comes
            _cut_after(a, tb)
            a.events = [e for e in a.events if e[0] <= tb]
        return
    _cut_after(a, tb)
    done = tb
    for run in a.actions:
        if run.end > tb and run.action.provider == "Manual":
            reach = min((x.start for x in b.actions if x.stage == run.stage), default=INF)
            if reach < run.end:
                run.end, run.status, run.error, run.user = max(reach, tb), "Abandoned", None, None
        done = max(done, run.end)
    for r in a.rules:
        done = max(done, r.end)
    a.events = [e for e in a.events if e[0] <= tb] + [(round(done, 3), "Superseded")]


def _cut_after(ex: Execution, t: float) -> None:
    ex.actions = [x for x in ex.actions if x.start <= t]
    ex.rules = [x for x in ex.rules if x.start <= t]
    ex.retries = [x for x in ex.retries if x[0] <= t]


class RunIndex:
    """Sorted views of a timeline for paging newest-first by (start, id)."""

    def __init__(self, tl: Timeline):
        self.revision = tl.revision
        self.executions = sorted(tl.executions, key=lambda e: (e.start, uuid_number(e.id)))
        self.execution_keys = [(e.start, uuid_number(e.id)) for e in self.executions]
        acts = [(r.start, r.n, ex, r) for ex in tl.executions for r in ex.actions]
        acts.sort(key=lambda x: (x[0], x[1]))
        self.actions = acts
        self.action_keys = [(x[0], x[1]) for x in acts]
        rules = [(r.start, r.n, ex, r) for ex in tl.executions for r in ex.rules]
        rules.sort(key=lambda x: (x[0], x[1]))
        self.rules = rules
        self.rule_keys = [(x[0], x[1]) for x in rules]
