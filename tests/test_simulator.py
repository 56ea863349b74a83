"""The simulated account, through a real boto3 client over HTTP on loopback."""

from __future__ import annotations

import ast
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from urllib.parse import urlparse

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ParamValidationError
from botocore.validate import validate_parameters
from click.testing import CliRunner

import recorder.simulator
from recorder.cli import main
from recorder.simulator import Account, ApiError, Faults, SimulatorServer
from recorder.simulator.fixtures import SeedAccount

NOW = datetime(2026, 11, 1, tzinfo=UTC)
MODEL = botocore.session.get_session().get_service_model("codepipeline")
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def make_client(url: str, service: str = "codepipeline", retries: int = 10, **config):
    # botocore's `max_attempts` counts retries: N retries = N + 1 calls at most.
    cfg = Config(retries={"mode": "adaptive", "max_attempts": retries}, **config)
    return boto3.client(service, region_name="us-east-1", endpoint_url=url, config=cfg, **CREDS)


def epochs_to_datetimes(shape, value):
    """A raw JSON body as botocore would parse it (timestamps as datetimes)."""
    if shape.type_name == "structure":
        return {k: epochs_to_datetimes(shape.members[k], v) for k, v in value.items()}
    if shape.type_name == "list":
        return [epochs_to_datetimes(shape.member, v) for v in value]
    if shape.type_name == "map":
        return {k: epochs_to_datetimes(shape.value, v) for k, v in value.items()}
    if shape.type_name == "timestamp":
        return datetime.fromtimestamp(value, UTC)
    return value


def check_output(operation: str, parsed: dict) -> dict:
    body = {k: v for k, v in parsed.items() if k != "ResponseMetadata"}
    validate_parameters(body, MODEL.operation_model(operation).output_shape)
    return body


def pages(client, method: str, key: str, **kw) -> list[dict]:
    return [x for page in client.get_paginator(method).paginate(**kw) for x in page[key]]


@pytest.fixture(scope="module")
def acct():
    return Account(pipelines=8, days=30, seed=7, now=NOW)


@pytest.fixture(scope="module")
def srv(acct):
    with SimulatorServer(acct) as s:
        yield s


@pytest.fixture(scope="module")
def cp(srv):
    return make_client(srv.endpoint_url)


# -- responses match botocore's output shapes ---------------------------------------


@pytest.mark.parametrize(("seed", "pipelines", "days"), [(7, 6, 10), (11, 10, 40), (3, 4, 400)])
def test_every_response_validates_against_botocore_output_shapes(seed, pipelines, days):
    acct = Account(pipelines=pipelines, days=days, seed=seed, now=NOW)
    seen: dict[str, set] = {"status": set(), "type": set(), "action": set(), "stage": set()}
    with SimulatorServer(acct) as srv:
        cp = make_client(srv.endpoint_url)
        names = [p["name"] for p in check_output("ListPipelines", cp.list_pipelines())["pipelines"]]
        assert sorted(names) == sorted(acct.pipeline_names())
        for name in names:
            current = check_output("GetPipeline", cp.get_pipeline(name=name))["pipeline"]
            for v in range(1, current["version"]):
                old = check_output("GetPipeline", cp.get_pipeline(name=name, version=v))
                assert old["pipeline"]["version"] == v
            state = check_output("GetPipelineState", cp.get_pipeline_state(name=name))
            seen["stage"] |= {
                s.get("latestExecution", {}).get("status") for s in state["stageStates"]
            }
            execs = check_output(
                "ListPipelineExecutions", cp.list_pipeline_executions(pipelineName=name)
            )["pipelineExecutionSummaries"]
            seen["status"] |= {e["status"] for e in execs}
            seen["type"] |= {e["executionType"] for e in execs}
            for e in execs[:4] + [e for e in execs if e["executionType"] == "ROLLBACK"][:2]:
                check_output(
                    "GetPipelineExecution",
                    cp.get_pipeline_execution(
                        pipelineName=name, pipelineExecutionId=e["pipelineExecutionId"]
                    ),
                )
            actions = check_output(
                "ListActionExecutions", cp.list_action_executions(pipelineName=name)
            )["actionExecutionDetails"]
            seen["action"] |= {a["status"] for a in actions}
            check_output("ListRuleExecutions", cp.list_rule_executions(pipelineName=name))
            # The raw JSON bodies, too (epoch seconds turned back into datetimes).
            for op, params in [
                ("GetPipelineState", {"name": name}),
                ("ListPipelineExecutions", {"pipelineName": name, "maxResults": 100}),
                ("ListActionExecutions", {"pipelineName": name}),
                ("ListRuleExecutions", {"pipelineName": name}),
                ("GetPipeline", {"name": name}),
            ]:
                shape = MODEL.operation_model(op).output_shape
                validate_parameters(epochs_to_datetimes(shape, acct.call(op, params)), shape)
    assert {"Succeeded", "Failed", "Superseded"} <= seen["status"]
    assert "ROLLBACK" in seen["type"] or days < 30
    assert {"Succeeded", "Failed"} <= seen["action"]


def test_the_account_has_the_realistic_shapes_the_issue_asks_for(acct):
    statuses, types, triggers, versions, retries = set(), set(), set(), set(), set()
    parallel = sequential = waiting = False
    for name in acct.pipeline_names():
        tl = acct.timeline(name)
        for ex in tl.visible(acct._now):
            statuses.add(ex.status_at(acct._now))
            types.add(ex.type)
            triggers.add(ex.trigger_type)
            versions.add(ex.version)
            retries |= {trigger for _, _, trigger in ex.retries}
            waiting = waiting or ex.waiting is not None
            for r in ex.revisions:
                assert r.created < ex.start
        for v in tl.spec.versions:
            for s in v.stages:
                orders = [a.run_order for a in s.actions]
                parallel = parallel or len(orders) != len(set(orders))
                sequential = sequential or len(set(orders)) > 1
    assert {"Succeeded", "Failed", "Superseded", "Stopped", "InProgress"} <= statuses
    assert types == {"STANDARD", "ROLLBACK"}
    assert {"AutomatedRollback", "WebhookV2", "StartPipelineExecution"} <= triggers
    assert versions == {1, 2, 3}
    assert retries == {"AutomatedStageRetry", "ManualStageRetry"}
    assert parallel and sequential and waiting
    modes = {acct.call("ListPipelines")["pipelines"][i]["executionMode"] for i in range(8)}
    assert modes == {"SUPERSEDED", "QUEUED", "PARALLEL"}


def test_pipeline_with_conditions_approval_and_disabled_transition(acct, cp):
    first, second = acct.pipeline_names()[:2]
    stages = {s["stageName"]: s for s in cp.get_pipeline_state(name=first)["stageStates"]}
    assert list(stages) == ["Source", "Build", "Approval", "Deploy"]
    deploy = stages["Deploy"]
    assert (
        deploy["beforeEntryConditionState"]["conditionStates"][0]["ruleStates"][0]["ruleName"]
        == "DeploymentWindow"
    )
    assert (
        deploy["onSuccessConditionState"]["conditionStates"][0]["ruleStates"][0]["ruleName"]
        == "ErrorRateAlarm"
    )
    rules = pages(cp, "list_rule_executions", "ruleExecutionDetails", pipelineName=first)
    assert {r["ruleName"] for r in rules} == {"DeploymentWindow", "ErrorRateAlarm"}
    decl = cp.get_pipeline(name=first)["pipeline"]
    assert decl["pipelineType"] == "V2" and decl["variables"][0]["name"] == "DEPLOY_ENV"
    assert decl["stages"][3]["onFailure"] == {"result": "ROLLBACK"}
    held = {s["stageName"]: s for s in cp.get_pipeline_state(name=second)["stageStates"]}
    assert held["Deploy"]["inboundTransitionState"]["enabled"] is False
    assert held["Deploy"]["inboundTransitionState"]["disabledReason"] == "Release freeze"
    waiting = held["Deploy"]["inboundExecution"]["pipelineExecutionId"]
    got = cp.get_pipeline_execution(pipelineName=second, pipelineExecutionId=waiting)
    assert got["pipelineExecution"]["status"] == "InProgress"


def test_get_pipeline_versions(acct, cp):
    name = acct.pipeline_names()[0]
    listed = next(p for p in cp.list_pipelines()["pipelines"] if p["name"] == name)
    assert listed["version"] == 2
    assert cp.get_pipeline(name=name)["pipeline"]["version"] == 2
    assert cp.get_pipeline(name=name, version=1)["pipeline"]["version"] == 1
    with pytest.raises(cp.exceptions.PipelineVersionNotFoundException):
        cp.get_pipeline(name=name, version=3)


# -- pagination ---------------------------------------------------------------------


def test_pages_concatenate_to_the_full_listing_without_duplicates(acct, cp):
    name = acct.pipeline_names()[0]
    want_ex = [e["pipelineExecutionId"] for e in acct.all_executions(name)]
    got_ex = [
        e["pipelineExecutionId"]
        for e in pages(cp, "list_pipeline_executions", "pipelineExecutionSummaries",
                       pipelineName=name, PaginationConfig={"PageSize": 7})
    ]  # fmt: skip
    assert got_ex == want_ex and len(set(got_ex)) == len(got_ex) > 100
    want_ac = [a["actionExecutionId"] for a in acct.all_action_executions(name)]
    got_ac = [
        a["actionExecutionId"]
        for a in pages(cp, "list_action_executions", "actionExecutionDetails",
                       pipelineName=name, PaginationConfig={"PageSize": 33})
    ]  # fmt: skip
    assert got_ac == want_ac and len(set(got_ac)) == len(got_ac)
    starts = [a["startTime"] for a in acct.all_action_executions(name)]
    assert starts == sorted(starts, reverse=True)  # newest first
    names = pages(cp, "list_pipelines", "pipelines", PaginationConfig={"PageSize": 3})
    assert [p["name"] for p in names] == sorted(acct.pipeline_names())


def test_paging_stays_duplicate_free_while_the_clock_moves():
    acct = Account(pipelines=2, days=10, seed=5, now=NOW)
    name = acct.pipeline_names()[0]
    first = acct.call("ListPipelineExecutions", {"pipelineName": name, "maxResults": 10})
    acct.advance(hours=36)
    rest = acct.call(
        "ListPipelineExecutions",
        {"pipelineName": name, "maxResults": 100, "nextToken": first["nextToken"]},
    )
    ids = [e["pipelineExecutionId"] for e in first["pipelineExecutionSummaries"]]
    ids += [e["pipelineExecutionId"] for e in rest["pipelineExecutionSummaries"]]
    assert len(ids) == len(set(ids))
    assert (
        rest["pipelineExecutionSummaries"][0]["startTime"]
        < first["pipelineExecutionSummaries"][-1]["startTime"]
    )


def test_bad_tokens_and_page_sizes_are_modeled_errors(acct, cp):
    name = acct.pipeline_names()[0]
    with pytest.raises(cp.exceptions.InvalidNextTokenException):
        cp.list_pipeline_executions(pipelineName=name, nextToken="garbage")
    token = cp.list_action_executions(pipelineName=name, maxResults=5)["nextToken"]
    with pytest.raises(cp.exceptions.InvalidNextTokenException):  # a token from another listing
        cp.list_pipeline_executions(pipelineName=name, nextToken=token)
    with pytest.raises(cp.exceptions.ValidationException) as e:
        cp.list_pipeline_executions(pipelineName=name, maxResults=101)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ApiError) as err:
        acct.call("ListActionExecutions", {"pipelineName": name, "maxResults": 0})
    assert (err.value.code, err.value.http_status) == ("ValidationException", 400)
    with pytest.raises(ParamValidationError):  # botocore itself checks the minimum
        cp.list_action_executions(pipelineName=name, maxResults=0)
    with pytest.raises(cp.exceptions.PipelineNotFoundException):
        cp.list_pipeline_executions(pipelineName="no-such-pipeline")
    with pytest.raises(cp.exceptions.PipelineExecutionNotFoundException):
        cp.get_pipeline_execution(
            pipelineName=name, pipelineExecutionId="00000000-0000-0000-0000-000000000000"
        )


def test_filters(acct, cp):
    name = acct.pipeline_names()[0]
    everything = acct.all_action_executions(name)
    ex_id = everything[0]["pipelineExecutionId"]
    only = pages(cp, "list_action_executions", "actionExecutionDetails", pipelineName=name,
                 filter={"pipelineExecutionId": ex_id})  # fmt: skip
    assert [a["actionExecutionId"] for a in only] == [
        a["actionExecutionId"] for a in everything if a["pipelineExecutionId"] == ex_id
    ]
    latest: dict[tuple[str, str], str] = {}  # (execution, action or rule) -> newest status
    for run in everything + acct.all_rule_executions(name):  # newest first
        if run["stageName"] == "Deploy":
            what = run.get("actionName") or run["ruleName"]
            latest.setdefault((run["pipelineExecutionId"], what), run["status"])
    ran = {a["pipelineExecutionId"] for a in everything if a["stageName"] == "Deploy"}
    deployed = ran - {ex for (ex, _), s in latest.items() if s != "Succeeded"}
    got = pages(cp, "list_pipeline_executions", "pipelineExecutionSummaries", pipelineName=name,
                filter={"succeededInStage": {"stageName": "Deploy"}})  # fmt: skip
    assert {e["pipelineExecutionId"] for e in got} == deployed and deployed
    retried = next(
        e for e in acct.timeline(name).visible(acct._now)
        if len({a.n for a in e.actions}) > len({(a.stage, a.action.name) for a in e.actions})
    )  # fmt: skip
    newest = {"pipelineExecutionId": retried.id, "startTimeRange": "Latest"}
    latest = acct.call(
        "ListActionExecutions",
        {"pipelineName": name, "filter": {"latestInPipelineExecution": newest}},
    )["actionExecutionDetails"]
    assert len(latest) == len({(a.stage, a.action.name) for a in retried.actions})


# -- the seeds fixture --------------------------------------------------------------

SEED_BODY = (
    '{ "pipelineExecution": { "artifactRevisions": [ { "created": 1427298837.7689769, '
    '"name": "MyApp", "revisionChangeIdentifier": "1427298921.3976923", '
    '"revisionId": "7636d59f3c461cEXAMPLE8417dbc6371", '
    '"revisionSummary": "Updating the application for feature 12-4820", "revisionUrl": "" } ], '
    '"pipelineExecutionId": "3137f7cb-7cf7-039j-s83l-d7eu3EXAMPLE", '
    '"pipelineName": "MyFirstPipeline", "pipelineVersion": 2, "status": "Succeeded" } }'
)


def test_seeds_scenario_serves_the_samples_verbatim():
    acct = SeedAccount()
    with SimulatorServer(acct) as srv:
        url = urlparse(srv.endpoint_url)
        conn = http.client.HTTPConnection(url.hostname, url.port)
        request = {"pipelineExecutionId": "42ee4d10-e4de-a37c-82b7-36c11EXAMPLE",
                   "pipelineName": "MyFirstPipeline"}  # fmt: skip
        conn.request("POST", "/", json.dumps(request), {
            "X-Amz-Target": "CodePipeline_20150709.GetPipelineExecution",
            "Content-Type": "application/x-amz-json-1.1"})  # fmt: skip
        resp = conn.getresponse()
        assert (resp.status, resp.read().decode()) == (200, SEED_BODY)
        cp = make_client(srv.endpoint_url)
        got = cp.get_pipeline_execution(
            pipelineName="MyFirstPipeline",
            pipelineExecutionId="3137f7cb-7cf7-039j-s83l-d7eu3EXAMPLE",
        )["pipelineExecution"]
        rev = got["artifactRevisions"][0]
        assert rev["revisionUrl"] == ""
        assert rev["created"] == datetime(2015, 3, 25, 15, 53, 57, 768977, tzinfo=UTC)
        assert (got["pipelineVersion"], got["status"]) == (2, "Succeeded")
        # The service sends what its own model forbids: exactly that one violation.
        with pytest.raises(ParamValidationError) as e:
            check_output("GetPipelineExecution", {"pipelineExecution": got})
        assert "revisionUrl" in str(e.value) and str(e.value).count("Invalid length") == 1
        state = check_output("GetPipelineState", cp.get_pipeline_state(name="string"))
        stage = state["stageStates"][0]
        assert (state["pipelineName"], state["pipelineVersion"]) == ("string", 123)
        assert stage["inboundExecution"] == {
            "pipelineExecutionId": "string", "status": "Cancelled", "type": "STANDARD"
        }  # fmt: skip
        assert stage["inboundTransitionState"]["enabled"] is True
        assert stage["actionStates"][0]["latestExecution"]["percentComplete"] == 123
        assert stage["retryStageMetadata"]["latestRetryTrigger"] == "AutomatedStageRetry"
        assert state["created"] == datetime(2015, 1, 1, tzinfo=UTC)
        assert [p["name"] for p in cp.list_pipelines()["pipelines"]] == [
            "MyFirstPipeline",
            "string",
        ]


# -- internal consistency and determinism ---------------------------------------------


def test_state_agrees_with_latest_executions(acct, cp):
    checked = 0
    for name in acct.pipeline_names():
        actions = pages(cp, "list_action_executions", "actionExecutionDetails", pipelineName=name)
        rules = pages(cp, "list_rule_executions", "ruleExecutionDetails", pipelineName=name)
        executions = pages(cp, "list_pipeline_executions", "pipelineExecutionSummaries",
                           pipelineName=name)  # fmt: skip
        by_id = {e["pipelineExecutionId"]: e for e in executions}
        for run in actions + rules:  # every run belongs to a listed execution, within its times
            ex = by_id[run["pipelineExecutionId"]]
            assert ex["startTime"] <= run["startTime"] <= run["lastUpdateTime"]
            assert run["lastUpdateTime"] <= ex["lastUpdateTime"]
            if run["status"] == "InProgress":
                assert ex["status"] in ("InProgress", "Stopping")
        for ex in executions:
            if ex["status"] not in ("InProgress", "Stopping"):
                runs = [a for a in actions if a["pipelineExecutionId"] == ex["pipelineExecutionId"]]
                assert all(a["status"] != "InProgress" for a in runs)
        state = cp.get_pipeline_state(name=name)
        for stage in state["stageStates"]:
            mine = [r for r in actions + rules if r["stageName"] == stage["stageName"]]
            newest = max(
                mine,
                key=lambda r: (r["startTime"], r.get("actionExecutionId") or r["ruleExecutionId"]),
            )  # noqa: E501
            assert stage["latestExecution"]["pipelineExecutionId"] == newest["pipelineExecutionId"]
            for a in stage["actionStates"]:
                runs = [r for r in actions if (r["stageName"], r["actionName"])
                        == (stage["stageName"], a["actionName"])]  # fmt: skip
                if not runs:
                    assert "latestExecution" not in a
                    continue
                assert a["latestExecution"]["actionExecutionId"] == runs[0]["actionExecutionId"]
                assert a["latestExecution"]["status"] == runs[0]["status"]
                checked += 1
        latest = executions[0]
        assert latest["startTime"] == max(e["startTime"] for e in executions)
    assert checked > 30


def test_same_seed_gives_byte_identical_bodies():
    def bodies(seed: int) -> list[str]:
        acct = Account(pipelines=4, days=7, seed=seed, now=NOW)
        out = [json.dumps(acct.call("ListPipelines"))]
        for name in acct.pipeline_names():
            for op, key in [("GetPipeline", "name"), ("GetPipelineState", "name"),
                            ("ListPipelineExecutions", "pipelineName"),
                            ("ListActionExecutions", "pipelineName"),
                            ("ListRuleExecutions", "pipelineName")]:  # fmt: skip
                out.append(json.dumps(acct.call(op, {key: name})))
        return out

    assert bodies(21) == bodies(21)
    assert bodies(21) != bodies(22)


def test_a_pipelines_history_does_not_depend_on_the_rest_of_the_account():
    small = Account(pipelines=3, days=5, seed=9, now=NOW)
    big = Account(pipelines=12, days=5, seed=9, now=NOW)
    assert big.pipeline_names()[:3] == small.pipeline_names()
    for name in reversed(big.pipeline_names()):  # built in another order
        big.timeline(name)
    for name in small.pipeline_names():
        assert small.all_action_executions(name) == big.all_action_executions(name)
    named = Account(days=5, seed=9, now=NOW, names=["svc.api@prod-1_x", "42"])
    assert named.pipeline_names() == ["svc.api@prod-1_x", "42"]
    assert named.call("GetPipelineState", {"name": "42"})["pipelineName"] == "42"


# -- the clock ----------------------------------------------------------------------


def test_advance_finishes_running_executions_and_starts_new_ones():
    acct = Account(pipelines=6, days=3, seed=7, now=NOW + timedelta(hours=14))
    running = [
        (name, e) for name in acct.pipeline_names() for e in acct.all_executions(name)
        if e["status"] == "InProgress"
    ]  # fmt: skip
    assert running
    before = {name: len(acct.all_executions(name)) for name in acct.pipeline_names()}
    acct.advance(minutes=60 * 24 * 4)
    assert acct.now == NOW + timedelta(days=4, hours=14)
    for name, e in running:
        got = acct.call("GetPipelineExecution",
                        {"pipelineName": name,
                         "pipelineExecutionId": e["pipelineExecutionId"]})  # fmt: skip
        if not acct.timeline(name).by_id[e["pipelineExecutionId"]].waiting:
            assert got["pipelineExecution"]["status"] != "InProgress"
    after = {name: len(acct.all_executions(name)) for name in acct.pipeline_names()}
    assert sum(after.values()) > sum(before.values()) + 6 * 4
    with pytest.raises(ValueError):
        acct.advance(minutes=-1)


def call_all(acct: Account, op: str, params: dict, key: str) -> list[dict]:
    out, token = [], None
    while True:
        body = acct.call(op, {**params, **({"nextToken": token} if token else {})})
        out += body[key]
        token = body.get("nextToken")
        if not token:
            return out


def test_retention_hides_executions_older_than_twelve_months():
    acct = Account(pipelines=1, days=400, seed=2, now=NOW)
    name = acct.pipeline_names()[0]
    cutoff = acct._now - 365 * 86400
    plan = acct.timeline(name).executions
    assert plan[0].start < cutoff - 30 * 86400
    listed = call_all(acct, "ListPipelineExecutions", {"pipelineName": name},
                      "pipelineExecutionSummaries")  # fmt: skip
    assert len(listed) == sum(1 for e in plan if cutoff <= e.start <= acct._now)
    assert min(e["startTime"] for e in listed) >= cutoff
    with pytest.raises(ApiError) as e:
        acct.call("GetPipelineExecution", {"pipelineName": name, "pipelineExecutionId": plan[0].id})
    assert e.value.code == "PipelineExecutionNotFoundException"


def test_deleted_pipeline_is_gone(acct):
    acct2 = Account(pipelines=3, days=2, seed=1, now=NOW)
    gone = acct2.pipeline_names()[1]
    acct2.delete_pipeline(gone)
    assert gone not in acct2.pipeline_names()
    assert gone not in [p["name"] for p in acct2.call("ListPipelines")["pipelines"]]
    with pytest.raises(ApiError) as e:
        acct2.call("GetPipelineState", {"name": gone})
    assert (e.value.code, e.value.http_status) == ("PipelineNotFoundException", 400)


# -- faults, STS, scale ---------------------------------------------------------------


def test_throttling_is_retried_transparently(acct):
    with SimulatorServer(acct, faults=Faults(throttle_burst=2)) as srv:
        resp = make_client(srv.endpoint_url).list_pipelines()
        assert resp["ResponseMetadata"]["RetryAttempts"] == 2
        assert len(resp["pipelines"]) == 8
        assert srv.calls == {"ListPipelines": 3} and srv.faulted == {"throttle": 2}
    with SimulatorServer(acct, faults=Faults(throttle_rate=1.0)) as srv:
        with pytest.raises(ClientError) as e:
            make_client(srv.endpoint_url, retries=1).list_pipelines()
        assert e.value.response["Error"]["Code"] == "ThrottlingException"
        assert srv.faulted == {"throttle": 2} and srv.calls == {"ListPipelines": 2}


def test_internal_errors_are_retried_and_latency_added(acct):
    with SimulatorServer(acct, faults=Faults(error_burst=2, latency_ms=40)) as srv:
        t = time.monotonic()
        resp = make_client(srv.endpoint_url).list_pipelines()
        assert time.monotonic() - t >= 3 * 0.04
        assert resp["ResponseMetadata"]["RetryAttempts"] == 2
        assert srv.faulted == {"error": 2} and srv.calls["ListPipelines"] == 3


def test_access_denied_and_sts(acct):
    with SimulatorServer(acct, faults=Faults(access_denied=True)) as srv:
        with pytest.raises(ClientError) as e:
            make_client(srv.endpoint_url).get_pipeline_state(name=acct.pipeline_names()[0])
        assert e.value.response["Error"]["Code"] == "AccessDeniedException"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        sts = make_client(srv.endpoint_url, "sts")
        assert sts.get_caller_identity()["Account"] == "123456789012"
        assert srv.calls["GetCallerIdentity"] == 1 and srv.faulted == {"access_denied": 1}


def test_vanished_pipeline_is_listed_but_not_found(acct):
    gone = acct.pipeline_names()[2]
    with SimulatorServer(acct, faults=Faults(vanish=(gone,))) as srv:
        cp = make_client(srv.endpoint_url)
        assert gone in [p["name"] for p in cp.list_pipelines()["pipelines"]]
        with pytest.raises(cp.exceptions.PipelineNotFoundException):
            cp.list_pipeline_executions(pipelineName=gone)
        assert srv.faulted == {"vanish": 1}


def test_dropped_connections_raise_or_are_retried(acct):
    name = acct.pipeline_names()[3]
    want = [a["actionExecutionId"] for a in acct.all_action_executions(name)]
    with SimulatorServer(acct, faults=Faults(drop_rate=1.0)) as srv:
        with pytest.raises(ConnectionClosedError):
            make_client(srv.endpoint_url, retries=0).list_pipelines()
        assert srv.faulted == {"drop": 1}
    with SimulatorServer(acct, faults=Faults(drop_rate=0.3, seed=4)) as srv:
        got = pages(make_client(srv.endpoint_url), "list_action_executions",
                    "actionExecutionDetails", pipelineName=name)  # fmt: skip
        assert [a["actionExecutionId"] for a in got] == want
        assert srv.faulted["drop"] >= 1


def test_big_accounts_are_lazy():
    t = time.monotonic()
    acct = Account(pipelines=500, days=365, seed=7, now=NOW, rate=6.0)
    listed = acct.call("ListPipelines", {"maxResults": 1000})["pipelines"]
    one = acct.call("ListPipelineExecutions", {"pipelineName": listed[0]["name"]})
    assert len(listed) == 500 and len(one["pipelineExecutionSummaries"]) == 100
    assert time.monotonic() - t < 5


# -- the package's structure ----------------------------------------------------------------

PACKAGE = "recorder.simulator"


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """Module -> the modules among `sources` it imports. Every import statement counts,
    at any depth (in a function, under `if TYPE_CHECKING:`): an import put off to run
    time, or made for the type checker only, still ties the two modules together."""
    graph = {}
    for name, text in sources.items():
        package = name if name == PACKAGE else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                deps |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + [base] if base else up)
                for alias in node.names:  # `from pkg import sub` imports the submodule
                    sub = f"{base}.{alias.name}"
                    deps.add(sub if sub in sources else base)
        graph[name] = {d for d in deps if d in sources and d != name}
    return graph


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as e:
        return e.args[1]
    return None


def test_simulator_modules_import_each_other_without_a_cycle():
    root = Path(recorder.simulator.__file__).parent
    sources = {
        PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}": path.read_text()
        for path in root.glob("*.py")
    }
    graph = import_graph(sources)
    assert import_cycle(graph) is None, " -> ".join(import_cycle(graph))
    # the shared pieces sit below the modules that once imported one another
    assert {f"{PACKAGE}.api", f"{PACKAGE}.protocol"} <= graph[f"{PACKAGE}.model"]
    assert {f"{PACKAGE}.model", f"{PACKAGE}.protocol"} <= graph[f"{PACKAGE}.fixtures"]
    assert f"{PACKAGE}.protocol" in graph[f"{PACKAGE}.api"]


def test_the_cycle_check_sees_lazy_type_only_and_relative_imports():
    a, b = f"{PACKAGE}.a", f"{PACKAGE}.b"
    lazy = f"def f():\n    from {a} import x\n"  # b imports a inside a function
    back = [
        f"from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from {b} import y\n",
        f"import {b}\n",
        f"from {PACKAGE} import b\n",
        "from . import b\n",
        "from .b import f\n",
    ]
    for a_text in back:
        assert sorted(import_cycle(import_graph({a: a_text, b: lazy}))[:2]) == [a, b], a_text
    # through the package: `from recorder.simulator import name` runs its __init__
    via_init = {PACKAGE: f"from {b} import f\n", a: f"from {PACKAGE} import f\n", b: lazy}
    assert import_cycle(import_graph(via_init))
    assert import_graph({a: "import os\n", b: lazy}) == {a: set(), b: {a}}
    assert import_cycle(import_graph({a: "import os\n", b: lazy})) is None


# -- the command ----------------------------------------------------------------------


def test_simulate_help_and_bad_values():
    runner = CliRunner()
    result = runner.invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0 and "--throttle-rate" in result.output
    bad = runner.invoke(main, ["simulate", "--port", "0", "--throttle-rate", "2"])
    assert bad.exit_code == 2
    assert bad.output.strip() == "Error: throttle_rate must be between 0 and 1, got 2.0"
    bad = runner.invoke(main, ["simulate", "--port", "0", "--now", "yesterday-ish"])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1


def as_from_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it: SIGINT neither ignored nor blocked in the child.
    A child inherits both from the process that starts it, and in the whole suite (pytest
    alone or its xdist workers) the simulator was started with SIGINT ignored: it served
    on after the test's SIGINT until the timeout (its threads' stacks showed the server
    still in select)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_simulate_serves_until_interrupted():
    # -X faulthandler: a child that does not exit dumps its threads' stacks on SIGABRT
    cmd = [sys.executable, "-X", "faulthandler", "-c", "from recorder.cli import main; main()",
           "simulate",
           "--port", "0", "--pipelines", "3", "--days", "2",
           "--now", "2026-11-01T00:00:00Z"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=as_from_a_terminal)  # fmt: skip
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        cp = make_client(url)
        assert len(cp.list_pipelines()["pipelines"]) == 3
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            threads = proc.communicate()[1]
            raise AssertionError(f"no exit after SIGINT; its threads: {threads}") from None
        assert proc.returncode == 0 and out == ""
        assert err.splitlines() == [
            "Record it from another shell (the simulator accepts any credentials):",
            "  export AWS_ACCESS_KEY_ID=simulated AWS_SECRET_ACCESS_KEY=simulated",
            f"  cprec collect --endpoint-url {url} --region us-east-1 --data sim-data",
        ]
    finally:
        if proc.poll() is None:
            proc.kill()
