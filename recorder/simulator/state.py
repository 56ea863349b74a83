"""GetPipelineState: the current state of every stage, action and condition at `now`.

"Latest" means the run (action or rule execution) with the greatest
(start, id) among those started by `now`, which is also the first entry per
stage/action of ListActionExecutions and ListRuleExecutions.
"""

from __future__ import annotations

from bisect import bisect_right

from recorder.simulator.definitions import ActionDef, PipelineSpec
from recorder.simulator.projection import USER_ARN, external, stage_status
from recorder.simulator.timeline import ActionRun, Execution, RuleRun, Timeline

_LAST = 1 << 128  # above every id number: (now, _LAST) bounds "started by now"


def pipeline_state(spec: PipelineSpec, tl: Timeline, now: float) -> dict:
    tl.ensure(now)
    version = spec.version_at(now)
    idx = tl.index()
    want_actions = {(s.name, a.name) for s in version.stages for a in s.actions}
    want_stages = {s.name for s in version.stages}
    latest_action: dict[tuple[str, str], tuple[Execution, ActionRun]] = {}
    latest_stage: dict[str, tuple[float, str, Execution]] = {}
    for i in range(bisect_right(idx.action_keys, (now, _LAST)) - 1, -1, -1):
        start, rid, ex, run = idx.actions[i]
        latest_action.setdefault((run.stage, run.action.name), (ex, run))
        latest_stage.setdefault(run.stage, (start, rid, ex))
        if want_actions <= latest_action.keys() and want_stages <= latest_stage.keys():
            break
    latest_rule: dict[tuple[str, str, str], tuple[Execution, RuleRun]] = {}
    for i in range(bisect_right(idx.rule_keys, (now, _LAST)) - 1, -1, -1):
        start, rid, ex, run = idx.rules[i]
        latest_rule.setdefault((run.stage, run.kind, run.rule.name), (ex, run))
        best = latest_stage.get(run.stage)
        if best is None or (start, rid) > best[:2]:
            latest_stage[run.stage] = (start, rid, ex)
    waiting = _waiting(tl, now)
    stages = []
    for pos, stage in enumerate(version.stages):
        st: dict = {"stageName": stage.name}
        if stage.name in waiting:
            ex = waiting[stage.name]
            st["inboundExecution"] = {"pipelineExecutionId": ex.id, "status": "InProgress",
                                      "type": ex.type}  # fmt: skip
        if pos > 0:
            st["inboundTransitionState"] = _transition(spec, stage.name, now)
        st["actionStates"] = [
            _action_state(spec, a, latest_action.get((stage.name, a.name)), now)
            for a in stage.actions
        ]
        if stage.name in latest_stage:
            ex = latest_stage[stage.name][2]
            status = stage_status(ex, stage.name, now)
            st["latestExecution"] = {
                "pipelineExecutionId": ex.id,
                "status": status,
                "type": ex.type,
            }
        for cond, key in ((stage.before_entry, "beforeEntry"), (stage.on_success, "onSuccess")):
            if cond:
                st[f"{key}ConditionState"] = _condition_state(cond, stage.name, latest_rule, now)
        if stage.name in latest_stage:
            meta = _retry_metadata(latest_stage[stage.name][2], stage.name, now)
            if meta:
                st["retryStageMetadata"] = meta
        stages.append(st)
    return {
        "pipelineName": spec.name,
        "pipelineVersion": version.number,
        "stageStates": stages,
        "created": spec.created,
        "updated": version.updated,
    }


def _waiting(tl: Timeline, now: float) -> dict[str, Execution]:
    """Executions held at a disabled transition, newest per stage."""
    found: dict[str, Execution] = {}
    for ex in reversed(tl.visible(now)[-50:]):
        if ex.waiting and ex.waiting[1] <= now and ex.status_at(now) == "InProgress":
            found.setdefault(ex.waiting[0], ex)
    return found


def _transition(spec: PipelineSpec, stage: str, now: float) -> dict:
    if spec.disabled_stage == stage and spec.disabled_at is not None and spec.disabled_at <= now:
        return {
            "enabled": False,
            "lastChangedBy": USER_ARN.format(account=spec.account_id, user="release-manager"),
            "lastChangedAt": spec.disabled_at,
            "disabledReason": "Release freeze",
        }
    return {"enabled": True}


def _entity_url(spec: PipelineSpec, a: ActionDef) -> str:
    if a.provider == "CodeStarSourceConnection":
        return f"https://github.com/{spec.repo}/tree/main"
    if a.provider == "CodeBuild":
        return (f"https://{spec.region}.console.aws.amazon.com/codesuite/codebuild/"
                f"{spec.account_id}/projects/{a.configuration['ProjectName']}")  # fmt: skip
    return f"https://{spec.region}.console.aws.amazon.com/codesuite/codepipeline/pipelines"


def _action_state(spec, a: ActionDef, latest, now: float) -> dict:
    st: dict = {"actionName": a.name}
    if latest is None:
        st["entityUrl"] = _entity_url(spec, a)
        return st
    ex, run = latest
    done = run.end <= now
    rev = next((r for r in ex.revisions if r.action == a.name), None)
    if a.category == "Source" and rev and done:
        st["currentRevision"] = {"revisionId": rev.revision_id, "revisionChangeId": rev.change_id,
                                 "created": rev.created}  # fmt: skip
    ext_id, url, summary = external(spec, ex, run)
    le: dict = {"actionExecutionId": run.id, "status": run.status if done else "InProgress"}
    if done:
        le["summary"] = summary
    le["lastStatusChange"] = run.end if done else run.start
    if a.provider == "Manual" and not done:
        le["token"] = f"{run.id[24:]}-{run.id[9:13]}-{run.id[14:18]}-{run.id[19:23]}-{run.id[:8]}"
    if done and run.user and run.status != "Abandoned":
        le["lastUpdatedBy"] = USER_ARN.format(account=spec.account_id, user=run.user)
    if ext_id:
        le["externalExecutionId"] = ext_id
    if url:
        le["externalExecutionUrl"] = url
    if done and run.error:
        le["errorDetails"] = {"code": run.error[0], "message": run.error[1]}
    st["latestExecution"] = le
    st["entityUrl"] = _entity_url(spec, a)
    if a.category == "Source" and rev and done:
        st["revisionUrl"] = rev.url
    return st


def _condition_state(cond, stage: str, latest_rule, now: float) -> dict:
    rule_states, statuses, last_change = [], [], None
    for r in cond.rules:
        rs: dict = {"ruleName": r.name}
        hit = latest_rule.get((stage, cond.kind, r.name))
        if hit:
            _, run = hit
            done = run.end <= now
            status = run.status if done else "InProgress"
            le: dict = {"ruleExecutionId": run.id, "status": status,
                        "summary": f"Rule {r.name} {status.lower()}",
                        "lastStatusChange": run.end if done else run.start,
                        "externalExecutionId": run.id}  # fmt: skip
            if done and run.error:
                le["errorDetails"] = {"code": run.error[0], "message": run.error[1]}
            rs["latestExecution"] = le
            statuses.append(status)
            last_change = max(last_change or 0.0, le["lastStatusChange"])
        rule_states.append(rs)
    state: dict = {}
    cs: dict = {}
    if statuses:
        overall = next((s for s in ("InProgress", "Failed", "Abandoned") if s in statuses),
                       "Succeeded")  # fmt: skip
        summary = f"{cond.kind} condition {overall.lower()}"
        state["latestExecution"] = {"status": overall, "summary": summary}
        cs["latestExecution"] = {"status": overall, "summary": summary,
                                 "lastStatusChange": last_change}  # fmt: skip
    cs["ruleStates"] = rule_states
    state["conditionStates"] = [cs]
    return state


def _retry_metadata(ex: Execution, stage: str, now: float) -> dict | None:
    hits = [(t, trig) for t, s, trig in ex.retries if s == stage and t <= now]
    if not hits:
        return None
    meta: dict = {}
    auto = sum(1 for _, trig in hits if trig == "AutomatedStageRetry")
    manual = len(hits) - auto
    if auto:
        meta["autoStageRetryAttempt"] = auto
    if manual:
        meta["manualStageRetryAttempt"] = manual
    meta["latestRetryTrigger"] = hits[-1][1]
    return meta
