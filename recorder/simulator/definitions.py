"""Pipeline definitions: what each simulated pipeline looks like, version by version.

A `PipelineSpec` is drawn from (seed, pipeline index) alone. It holds one
`Version` per definition update; `declaration()` renders a version as the
`pipeline` member of a GetPipeline response. Durations and failure rates per
action live here too, next to the action they describe.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from functools import cached_property

DAY = 86400.0


@dataclass(frozen=True)
class ActionDef:
    name: str
    category: str
    provider: str
    run_order: int
    configuration: dict[str, str]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    namespace: str | None
    median_s: float  # log-normal duration: median and sigma of log
    sigma: float
    fail_p: float


@dataclass(frozen=True)
class RuleDef:
    name: str
    provider: str
    configuration: dict[str, str]
    median_s: float
    sigma: float
    fail_p: float


@dataclass(frozen=True)
class ConditionDef:
    kind: str  # beforeEntry | onSuccess
    result: str  # FAIL | ROLLBACK
    rules: tuple[RuleDef, ...]


@dataclass(frozen=True)
class StageDef:
    name: str
    actions: tuple[ActionDef, ...]
    before_entry: ConditionDef | None = None
    on_success: ConditionDef | None = None
    on_failure: str | None = None  # ROLLBACK | RETRY (automatic stage retry)

    @cached_property
    def groups(self) -> list[list[ActionDef]]:
        """Actions grouped by runOrder: a group runs in parallel, groups in sequence."""
        orders = sorted({a.run_order for a in self.actions})
        return [[a for a in self.actions if a.run_order == o] for o in orders]

    def conditions(self) -> list[ConditionDef]:
        return [c for c in (self.before_entry, self.on_success) if c]


@dataclass(frozen=True)
class Version:
    number: int
    updated: float  # epoch seconds: when this version became current
    stages: tuple[StageDef, ...]

    def stage(self, name: str) -> StageDef | None:
        return next((s for s in self.stages if s.name == name), None)


@dataclass
class PipelineSpec:
    index: int
    name: str
    pipeline_type: str  # V1 | V2
    execution_mode: str  # SUPERSEDED | QUEUED | PARALLEL
    created: float
    versions: list[Version]
    account_id: str
    region: str
    repo: str
    variables: list[tuple[str, str, str]] = field(default_factory=list)
    disabled_stage: str | None = None  # inbound transition disabled from `disabled_at`
    disabled_at: float | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:codepipeline:{self.region}:{self.account_id}:{self.name}"

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role/service-role/AWSCodePipelineServiceRole"

    @property
    def bucket(self) -> str:
        return f"codepipeline-{self.region}-{self.account_id}"

    @property
    def connection_arn(self) -> str:
        return (
            f"arn:aws:codeconnections:{self.region}:{self.account_id}:connection/"
            "5b1e4a0c-7f3d-4e8a-9c21-0d6f2b3a9e47"
        )

    def version_at(self, t: float) -> Version:
        current = self.versions[0]
        for v in self.versions:
            if v.updated <= t:
                current = v
        return current

    def slug(self) -> str:
        return "".join(c if c.isalnum() or c == "-" else "-" for c in self.name)[:40]


# Per-provider behaviour: (median seconds, sigma, failure probability).
_SOURCE = (8.0, 0.5, 0.004)
_S3_SOURCE = (4.0, 0.4, 0.002)
_BUILD = (240.0, 0.5, 0.08)
# the Amazon Linux image builds slower: a definition update that switches to it is a
# regression `cprec query regressions` should find
_BUILD_AL2 = (420.0, 0.5, 0.08)
_UNIT = (180.0, 0.45, 0.05)
_TEST = (420.0, 0.6, 0.10)
_LOAD = (600.0, 0.4, 0.06)
_APPROVAL = (2 * 3600.0, 1.0, 0.05)
_DEPLOY = {"CodeDeploy": (300.0, 0.5, 0.05), "ECS": (360.0, 0.6, 0.05)}
_DEPLOY["CloudFormation"] = (150.0, 0.7, 0.06)
_SMOKE = (20.0, 0.6, 0.03)


def _action(name, category, provider, order, config, inputs, outputs, ns, behaviour) -> ActionDef:
    median, sigma, fail = behaviour
    return ActionDef(
        name, category, provider, order, config, inputs, outputs, ns, median, sigma, fail
    )


@dataclass
class _Layout:
    """The knobs a definition update may turn."""

    second_source: bool
    build_parallel: bool
    has_test: bool
    test_sequential: bool
    has_approval: bool
    deploy_provider: str
    deploy_smoke: bool
    before_entry: str | None  # DeploymentWindow | VariableCheck
    on_success_alarm: bool
    on_failure: str | None  # ROLLBACK | RETRY
    build_image: str


def _stages(spec: PipelineSpec, lay: _Layout) -> tuple[StageDef, ...]:
    slug = spec.slug()
    sources = [
        _action(
            "Source", "Source", "CodeStarSourceConnection", 1,
            {
                "ConnectionArn": spec.connection_arn,
                "FullRepositoryId": spec.repo,
                "BranchName": "main",
                "OutputArtifactFormat": "CODE_ZIP",
            },
            (), ("SourceArtifact",), "SourceVariables", _SOURCE,
        )
    ]  # fmt: skip
    if lay.second_source:
        sources.append(
            _action(
                "Config", "Source", "S3", 1,
                {"S3Bucket": f"{slug.lower()}-config", "S3ObjectKey": "config.zip",
                 "PollForSourceChanges": "false"},
                (), ("ConfigArtifact",), "ConfigVariables", _S3_SOURCE,
            )
        )  # fmt: skip
    build_in = ("SourceArtifact", "ConfigArtifact") if lay.second_source else ("SourceArtifact",)
    builds = [
        _action(
            "Build", "Build", "CodeBuild", 1,
            {"ProjectName": f"{slug}-build", "PrimarySource": "SourceArtifact",
             "EnvironmentVariables": f'[{{"name":"IMAGE","value":"{lay.build_image}"}}]'},
            build_in, ("BuildArtifact",), "BuildVariables",
            _BUILD if lay.build_image == "aws/codebuild/standard:7.0" else _BUILD_AL2,
        )
    ]  # fmt: skip
    if lay.build_parallel:
        builds.append(
            _action(
                "UnitTests", "Test", "CodeBuild", 1, {"ProjectName": f"{slug}-unit"},
                ("SourceArtifact",), (), None, _UNIT,
            )
        )  # fmt: skip
    stages = [StageDef("Source", tuple(sources)), StageDef("Build", tuple(builds))]
    if lay.has_test:
        tests = [
            _action(
                "IntegrationTests", "Test", "CodeBuild", 1, {"ProjectName": f"{slug}-it"},
                ("BuildArtifact",), (), None, _TEST,
            )
        ]  # fmt: skip
        if lay.test_sequential:
            tests.append(
                _action(
                    "LoadTest", "Test", "CodeBuild", 2, {"ProjectName": f"{slug}-load"},
                    ("BuildArtifact",), (), None, _LOAD,
                )
            )  # fmt: skip
        stages.append(StageDef("Test", tuple(tests)))
    if lay.has_approval:
        stages.append(
            StageDef(
                "Approval",
                (
                    _action(
                        "ManualApproval", "Approval", "Manual", 1,
                        {"CustomData": f"Approve release of {spec.name}",
                         "NotificationArn": f"arn:aws:sns:{spec.region}:{spec.account_id}:rel"},
                        (), (), None, _APPROVAL,
                    ),
                ),
            )
        )  # fmt: skip
    deploys = [_deploy_action(spec, lay.deploy_provider)]
    if lay.deploy_smoke:
        deploys.append(
            _action(
                "SmokeTest", "Invoke", "Lambda", 2, {"FunctionName": f"{slug}-smoke"},
                (), (), None, _SMOKE,
            )
        )  # fmt: skip
    before = on_success = None
    if lay.before_entry == "DeploymentWindow":
        before = ConditionDef(
            "beforeEntry", "FAIL",
            (RuleDef("DeploymentWindow", "DeploymentWindow",
                     {"Cron": "0 9-17 ? * MON-FRI *", "TimeZone": "UTC"}, 30.0, 1.5, 0.03),),
        )  # fmt: skip
    elif lay.before_entry == "VariableCheck":
        before = ConditionDef(
            "beforeEntry", "FAIL",
            (RuleDef("CoverageGate", "VariableCheck",
                     {"Variable": "#{BuildVariables.COVERAGE}", "Value": "80",
                      "Operator": "GREATER_THAN"}, 2.0, 0.3, 0.05),),
        )  # fmt: skip
    if lay.on_success_alarm:
        on_success = ConditionDef(
            "onSuccess", "ROLLBACK",
            (RuleDef("ErrorRateAlarm", "CloudWatchAlarm",
                     {"AlarmName": f"{slug}-5xx", "WaitTime": "300"}, 300.0, 0.1, 0.04),),
        )  # fmt: skip
    stages.append(StageDef("Deploy", tuple(deploys), before, on_success, lay.on_failure))
    return tuple(stages)


def _deploy_action(spec: PipelineSpec, provider: str) -> ActionDef:
    slug = spec.slug()
    if provider == "CodeDeploy":
        config = {"ApplicationName": slug, "DeploymentGroupName": f"{slug}-fleet"}
    elif provider == "ECS":
        config = {"ClusterName": "main", "ServiceName": slug, "FileName": "imagedefinitions.json"}
    else:
        config = {
            "ActionMode": "CREATE_UPDATE",
            "StackName": slug,
            "Capabilities": "CAPABILITY_IAM",
            "RoleArn": f"arn:aws:iam::{spec.account_id}:role/cfn-deploy",
            "TemplatePath": "BuildArtifact::template.yaml",
        }
    return _action(
        "Deploy", "Deploy", provider, 1, config, ("BuildArtifact",), (), "DeployVariables",
        _DEPLOY[provider],
    )  # fmt: skip


def make_spec(
    seed: int, index: int, name: str, history_start: float, history_end: float,
    account_id: str, region: str,
) -> PipelineSpec:  # fmt: skip
    """The definition history of pipeline `index`; the first four always show
    the rare features (approval + conditions + rollback, a disabled transition,
    QUEUED with automatic retry, PARALLEL with two sources) so that even a
    small account has them."""
    rng = random.Random(f"spec/{seed}/{index}")
    forced = index if index < 4 else None
    ptype = "V2" if (forced in (0, 2, 3) or (forced is None and rng.random() < 0.7)) else "V1"
    if forced == 2:
        mode = "QUEUED"
    elif forced == 3:
        mode = "PARALLEL"
    elif ptype == "V2" and forced is None:
        mode = rng.choices(["SUPERSEDED", "QUEUED", "PARALLEL"], [0.6, 0.2, 0.2])[0]
    else:
        mode = "SUPERSEDED"
    span = history_end - history_start
    if forced is None and rng.random() < 0.15:
        created = history_start + rng.uniform(0.05, 0.5) * span  # a pipeline born mid-history
    else:
        created = history_start - rng.uniform(20, 600) * DAY
    created = round(created, 3)
    team = name.replace("@", "-").replace("_", "-").replace(".", "-").split("-")[0].lower()
    spec = PipelineSpec(
        index=index, name=name, pipeline_type=ptype, execution_mode=mode, created=created,
        versions=[], account_id=account_id, region=region,
        repo=f"acme-{team or 'org'}/{name.lower().replace('@', '-')[:60]}",
    )  # fmt: skip
    v2 = ptype == "V2"
    lay = _Layout(
        second_source=forced == 3 or (forced is None and rng.random() < 0.15),
        build_parallel=forced == 0 or (forced is None and rng.random() < 0.4),
        has_test=forced == 1 or (forced is None and rng.random() < 0.6),
        test_sequential=forced == 1 or (forced is None and rng.random() < 0.4),
        has_approval=forced == 0
        or (forced is None and mode == "SUPERSEDED" and rng.random() < 0.35),
        deploy_provider=rng.choice(["CodeDeploy", "ECS", "CloudFormation"]),
        deploy_smoke=forced == 0 or (forced is None and rng.random() < 0.4),
        before_entry=(
            "DeploymentWindow" if forced == 0 else "VariableCheck" if forced == 2
            else rng.choice([None, None, "DeploymentWindow", "VariableCheck"])
            if v2 and forced is None
            else None
        ),
        on_success_alarm=forced == 0 or (v2 and forced is None and rng.random() < 0.4),
        on_failure=(
            "ROLLBACK" if forced == 0 else "RETRY" if forced == 2
            else rng.choice([None, None, "ROLLBACK", "RETRY"]) if v2 and forced is None
            else None
        ),
        build_image="aws/codebuild/standard:7.0",
    )  # fmt: skip
    if v2:
        spec.variables = [("DEPLOY_ENV", "prod", "Target environment"),
                          ("RELEASE_CHANNEL", "stable", "")]  # fmt: skip
    versions = [Version(1, created, _stages(spec, lay))]
    n_updates = 1 if forced == 0 else rng.choice([0, 0, 1, 2]) if forced is None else 0
    start = max(created, history_start)
    times = sorted(round(rng.uniform(start, history_end), 3) for _ in range(n_updates))
    forced_knob = None
    if forced == 1:  # switched to the slower build image 5 days before the end
        times, forced_knob = [round(history_end - 5 * DAY, 3)], "build_image"
    for number, t in enumerate(times, start=2):
        knob = forced_knob or rng.choice(
            ["has_test", "build_parallel", "deploy_smoke", "build_image"]
        )
        if knob == "build_image":
            lay.build_image = (
                "aws/codebuild/standard:7.0"
                if number % 2
                else "aws/codebuild/amazonlinux2-x86_64-standard:5.0"
            )
        else:
            setattr(lay, knob, not getattr(lay, knob))
        versions.append(Version(number, t, _stages(spec, lay)))
    spec.versions = versions
    if forced == 1 or (forced is None and mode == "SUPERSEDED" and rng.random() < 0.1):
        spec.disabled_stage = "Deploy"
        spec.disabled_at = round(history_end - rng.uniform(0.1, 3.0) * DAY, 3)
    return spec


def declaration(spec: PipelineSpec, version: Version) -> dict:
    """The `pipeline` member of a GetPipeline response for one version."""
    stages = []
    for s in version.stages:
        stage: dict = {"name": s.name, "actions": [_action_decl(spec, a) for a in s.actions]}
        if s.on_failure:
            stage["onFailure"] = {"result": s.on_failure}
            if s.on_failure == "RETRY":
                stage["onFailure"]["retryConfiguration"] = {"retryMode": "FAILED_ACTIONS"}
        for cond, key in ((s.before_entry, "beforeEntry"), (s.on_success, "onSuccess")):
            if cond:
                stage[key] = {"conditions": [{"result": cond.result, "rules": [
                    {"name": r.name,
                     "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": r.provider,
                                    "version": "1"},
                     "configuration": dict(r.configuration),
                     "inputArtifacts": [], "region": spec.region}
                    for r in cond.rules]}]}  # fmt: skip
        stages.append(stage)
    decl: dict = {
        "name": spec.name,
        "roleArn": spec.role_arn,
        "artifactStore": {"type": "S3", "location": spec.bucket},
        "stages": stages,
        "version": version.number,
        "executionMode": spec.execution_mode,
        "pipelineType": spec.pipeline_type,
    }
    if spec.pipeline_type == "V2":
        decl["variables"] = [
            {"name": n, "defaultValue": d, **({"description": desc} if desc else {})}
            for n, d, desc in spec.variables
        ]
        decl["triggers"] = [
            {
                "providerType": "CodeStarSourceConnection",
                "gitConfiguration": {
                    "sourceActionName": "Source",
                    "push": [{"branches": {"includes": ["main"]}}],
                },
            }
        ]
    return decl


def _action_decl(spec: PipelineSpec, a: ActionDef) -> dict:
    d: dict = {
        "name": a.name,
        "actionTypeId": {"category": a.category, "owner": "AWS", "provider": a.provider,
                         "version": "1"},
        "runOrder": a.run_order,
        "configuration": dict(a.configuration),
        "outputArtifacts": [{"name": n} for n in a.outputs],
        "inputArtifacts": [{"name": n} for n in a.inputs],
        "region": spec.region,
    }  # fmt: skip
    if a.namespace:
        d["namespace"] = a.namespace
    return d


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))
