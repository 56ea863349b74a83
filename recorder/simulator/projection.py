"""What the API shows: a timeline's plan seen at the clock `now`.

An execution is visible once started; an action or rule execution once
started, InProgress until its planned end passes, and only then with its final
status, output and error. Everything here is a pure function of (plan, now),
which is what makes the simulator deterministic and its answers consistent.
Timestamps are epoch-second floats, as the JSON protocol sends them.
"""

from __future__ import annotations

from recorder.simulator.definitions import PipelineSpec
from recorder.simulator.timeline import ActionRun, Execution, RuleRun

USER_ARN = "arn:aws:iam::{account}:user/{user}"


def last_update(ex: Execution, now: float) -> float:
    t = ex.start
    for when, _ in ex.events:
        if when <= now:
            t = max(t, when)
    for run in (*ex.actions, *ex.rules):
        if run.start <= now:
            t = max(t, run.end if run.end <= now else run.start)
    return t


def _revisions_known(ex: Execution, now: float) -> bool:
    if ex.type == "ROLLBACK":
        return True
    return any(r.action.category == "Source" and r.end <= now and r.status == "Succeeded"
               for r in ex.actions)  # fmt: skip


def _status_summary(ex: Execution, status: str) -> str | None:
    if status == "Failed" and ex.failed_at:
        return f"{ex.failed_at[1]} in stage {ex.failed_at[0]} failed"
    return None


def execution_summary(spec: PipelineSpec, ex: Execution, now: float) -> dict:
    status = ex.status_at(now)
    d: dict = {"pipelineExecutionId": ex.id, "status": status}
    summary = _status_summary(ex, status)
    if summary:
        d["statusSummary"] = summary
    d["startTime"] = ex.start
    d["lastUpdateTime"] = last_update(ex, now)
    known = _revisions_known(ex, now)
    d["sourceRevisions"] = [
        {"actionName": r.action, "revisionId": r.revision_id, "revisionSummary": r.summary,
         "revisionUrl": r.url}
        for r in (ex.revisions if known else [])
    ]  # fmt: skip
    d["trigger"] = {"triggerType": ex.trigger_type, "triggerDetail": ex.trigger_detail}
    if status in ("Stopping", "Stopped") and ex.stop_reason:
        d["stopTrigger"] = {"reason": ex.stop_reason}
    d["executionMode"] = ex.mode
    d["executionType"] = ex.type
    if ex.target:
        d["rollbackMetadata"] = {"rollbackTargetPipelineExecutionId": ex.target}
    return d


def execution_detail(spec: PipelineSpec, ex: Execution, now: float) -> dict:
    status = ex.status_at(now)
    d: dict = {
        "pipelineName": spec.name,
        "pipelineVersion": ex.version,
        "pipelineExecutionId": ex.id,
        "status": status,
    }
    summary = _status_summary(ex, status)
    if summary:
        d["statusSummary"] = summary
    known = _revisions_known(ex, now)
    d["artifactRevisions"] = [
        {"name": r.artifact, "revisionId": r.revision_id, "revisionChangeIdentifier": r.change_id,
         "revisionSummary": r.summary, "created": r.created, "revisionUrl": r.url}
        for r in (ex.revisions if known else [])
    ]  # fmt: skip
    if spec.pipeline_type == "V2":
        d["variables"] = [{"name": n, "resolvedValue": v} for n, v in ex.variables]
    d["trigger"] = {"triggerType": ex.trigger_type, "triggerDetail": ex.trigger_detail}
    d["executionMode"] = ex.mode
    d["executionType"] = ex.type
    if ex.target:
        d["rollbackMetadata"] = {"rollbackTargetPipelineExecutionId": ex.target}
    return d


def _s3(spec: PipelineSpec, ex: Execution, artifact: str) -> dict:
    key = f"{spec.name[:20]}/{artifact[:10]}/{ex.id[-7:]}"
    return {"name": artifact, "s3location": {"bucket": spec.bucket, "key": key}}


def external(
    spec: PipelineSpec, ex: Execution, run: ActionRun
) -> tuple[str | None, str | None, str]:
    """(external id, external URL, summary) as each provider reports them."""
    a, region, acct = run.action, spec.region, spec.account_id
    console = f"https://{region}.console.aws.amazon.com"
    if a.provider == "CodeStarSourceConnection":
        rev = next((r for r in ex.revisions if r.action == a.name), None)
        if rev is None:
            return None, None, "Source fetched"
        return rev.revision_id, rev.url, rev.summary
    if a.provider == "S3":
        rev = next((r for r in ex.revisions if r.action == a.name), None)
        return (rev.revision_id if rev else None), (rev.url if rev else None), "S3 object fetched"
    if a.provider == "CodeBuild":
        project = a.configuration["ProjectName"]
        build = f"{project}:{run.id}"
        url = f"{console}/codesuite/codebuild/{acct}/projects/{project}/build/{project}%3A{run.id}"
        return build, url, f"Build {run.status.lower()}"
    if a.provider == "CodeDeploy":
        dep = "d-" + run.id.replace("-", "")[:9].upper()
        return dep, f"{console}/codesuite/codedeploy/deployments/{dep}", "Deployment completed"
    if a.provider == "ECS":
        return (
            f"ecs-svc/{run.id[:19]}",
            f"{console}/ecs/v2/clusters/main/services",
            "Service updated",
        )
    if a.provider == "CloudFormation":
        stack = a.configuration["StackName"]
        return f"stack/{stack}/{run.id}", f"{console}/cloudformation/home", f"Stack {stack} updated"
    if a.provider == "Lambda":
        return (
            run.id,
            f"{console}/lambda/home#/functions/{a.configuration['FunctionName']}",
            ("Smoke test passed"),
        )
    verdict = "Approved" if run.status == "Succeeded" else "Rejected"
    return None, None, f"{verdict} by {run.user}" if run.user else "Approval abandoned"


def action_detail(spec: PipelineSpec, ex: Execution, run: ActionRun, now: float) -> dict:
    a = run.action
    done = run.end <= now
    status = run.status if done else "InProgress"
    d: dict = {
        "pipelineExecutionId": ex.id,
        "actionExecutionId": run.id,
        "pipelineVersion": ex.version,
        "stageName": run.stage,
        "actionName": a.name,
        "startTime": run.start,
        "lastUpdateTime": run.end if done else run.start,
    }
    if done and run.user and status != "Abandoned":
        d["updatedBy"] = USER_ARN.format(account=spec.account_id, user=run.user)
    d["status"] = status
    inp: dict = {
        "actionTypeId": {"category": a.category, "owner": "AWS", "provider": a.provider,
                         "version": "1"},
        "configuration": dict(a.configuration),
        "resolvedConfiguration": dict(a.configuration),
        "roleArn": spec.role_arn,
        "region": spec.region,
        "inputArtifacts": [_s3(spec, ex, n) for n in a.inputs],
    }  # fmt: skip
    if a.namespace:
        inp["namespace"] = a.namespace
    d["input"] = inp
    ext_id, url, summary = external(spec, ex, run)
    result: dict = {}
    if ext_id:
        result["externalExecutionId"] = ext_id
    if done:
        result["externalExecutionSummary"] = summary
    if url:
        result["externalExecutionUrl"] = url
    if done and run.error:
        result["errorDetails"] = {"code": run.error[0], "message": run.error[1]}
    out: dict = {"outputArtifacts": [_s3(spec, ex, n) for n in a.outputs] if status == "Succeeded"
                 else []}  # fmt: skip
    if result:
        out["executionResult"] = result
    if done:
        out["outputVariables"] = _output_variables(ex, run) if status == "Succeeded" else {}
    d["output"] = out
    return d


def _output_variables(ex: Execution, run: ActionRun) -> dict[str, str]:
    a = run.action
    if not a.namespace:
        return {}
    if a.provider == "CodeStarSourceConnection":
        rev = next((r for r in ex.revisions if r.action == a.name), None)
        if rev is None:
            return {}
        return {"CommitId": rev.revision_id, "BranchName": "main",
                "FullRepositoryName": a.configuration["FullRepositoryId"],
                "ProviderType": "GitHub",
                "ConnectionArn": a.configuration["ConnectionArn"]}  # fmt: skip
    if a.provider == "CodeBuild":
        return {"IMAGE_TAG": ex.id[:8], "COVERAGE": str(70 + int(run.id[:2], 16) % 30)}
    return {}


def rule_detail(spec: PipelineSpec, ex: Execution, run: RuleRun, now: float) -> dict:
    r = run.rule
    done = run.end <= now
    status = run.status if done else "InProgress"
    resolved = {k: (str(70 + int(ex.id[:2], 16) % 30) if v.startswith("#{") else v)
                for k, v in r.configuration.items()}  # fmt: skip
    result: dict = {"externalExecutionId": run.id}
    if done:
        result["externalExecutionSummary"] = _rule_summary(run)
    if done and run.error:
        result["errorDetails"] = {"code": run.error[0], "message": run.error[1]}
    return {
        "pipelineExecutionId": ex.id,
        "ruleExecutionId": run.id,
        "pipelineVersion": ex.version,
        "stageName": run.stage,
        "ruleName": r.name,
        "startTime": run.start,
        "lastUpdateTime": run.end if done else run.start,
        "status": status,
        "input": {
            "ruleTypeId": {
                "category": "Rule",
                "owner": "AWS",
                "provider": r.provider,
                "version": "1",
            },
            "configuration": dict(r.configuration),
            "resolvedConfiguration": resolved,
            "roleArn": spec.role_arn,
            "region": spec.region,
            "inputArtifacts": [],
        },
        "output": {"executionResult": result},
    }


def _rule_summary(run: RuleRun) -> str:
    if run.status == "Succeeded":
        return f"Rule {run.rule.name} succeeded"
    if run.status == "Abandoned":
        return f"Rule {run.rule.name} was abandoned"
    return f"Rule {run.rule.name} failed"


def stage_status(ex: Execution, stage: str, now: float) -> str:
    """A stage's status for one execution, from its visible runs in that stage."""
    latest: dict[str, ActionRun | RuleRun] = {}
    running = False
    for run in (*ex.actions, *ex.rules):
        if run.stage != stage or run.start > now:
            continue
        name = run.action.name if isinstance(run, ActionRun) else "rule:" + run.rule.name
        if name not in latest or run.start >= latest[name].start:
            latest[name] = run
        running = running or run.end > now
    if running:
        return "Stopping" if ex.status_at(now) == "Stopping" else "InProgress"
    statuses = {r.status for r in latest.values()}
    if "Failed" not in statuses and not any(isinstance(r, ActionRun) for r in latest.values()):
        # Entry conditions passed but no action ever started: the execution ended first.
        return "Cancelled" if ex.status_at(now) in ("Superseded", "Stopped") else "InProgress"
    if "Failed" in statuses:
        return "Failed"
    if "Abandoned" in statuses:
        return "Stopped"
    return "Succeeded"
