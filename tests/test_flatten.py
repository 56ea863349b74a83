"""Flatteners: exact rows from the shared seed samples, and no field of any response
shape (taken from botocore's own service model) dropped silently."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import botocore.session
import pytest

from recorder.flatten import (
    flatten_action_execution,
    flatten_execution,
    flatten_pipeline,
    flatten_pipeline_state,
    flatten_rule_execution,
    state_hash,
    to_json,
    ts,
)
from recorder.schemas import TABLES, to_arrow

FIXTURES = Path(__file__).parent / "fixtures"
SNAP = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
T2015 = datetime(2015, 1, 1, tzinfo=UTC)


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


# --- the two seed samples (shared/seeds), converted to JSON in tests/fixtures ----------


def test_seed_get_pipeline_execution_rows():
    rows = flatten_execution(load("get_pipeline_execution.json"))
    eid = "3137f7cb-7cf7-039j-s83l-d7eu3EXAMPLE"
    assert rows["executions"] == [
        {
            "execution_id": eid,
            "status": "Succeeded",
            "status_summary": None,
            "start_time": None,
            "last_update_time": None,
            "pipeline_version": 2,
            "trigger_type": None,
            "trigger_detail": None,
            "execution_mode": None,
            "execution_type": None,
            "rollback_target_execution_id": None,
            "stop_trigger_reason": None,
        }
    ]
    assert rows["execution_revisions"] == [
        {
            "execution_id": eid,
            "kind": "artifact",
            "name": "MyApp",
            "revision_id": "7636d59f3c461cEXAMPLE8417dbc6371",
            "revision_change_id": "1427298921.3976923",
            "revision_summary": "Updating the application for feature 12-4820",
            "revision_url": "",  # the service sends what the model forbids: kept as given
            "created": datetime(2015, 3, 25, 15, 53, 57, 768977, tzinfo=UTC),
        }
    ]
    assert rows["execution_variables"] == []
    # and it survives the canonical schema: "" stays "", absent stays NULL
    table = to_arrow("execution_revisions", rows["execution_revisions"])
    assert table.column("revision_url").to_pylist() == [""]
    executions = to_arrow("executions", rows["executions"])
    assert executions.column("status_summary").to_pylist() == [None]


def test_seed_get_pipeline_execution_with_its_list_summary():
    summary = {
        "pipelineExecutionId": "3137f7cb-7cf7-039j-s83l-d7eu3EXAMPLE",
        "status": "InProgress",  # listed before it finished: the detail's status wins
        "startTime": datetime(2015, 3, 25, 15, 50, tzinfo=UTC),
        "lastUpdateTime": datetime(2015, 3, 25, 15, 54, tzinfo=UTC),
        "sourceRevisions": [{"actionName": "Source", "revisionId": "abc", "revisionUrl": ""}],
        "trigger": {"triggerType": "Webhook", "triggerDetail": "arn:x"},
        "stopTrigger": {"reason": "manual"},
        "executionMode": "SUPERSEDED",
        "executionType": "STANDARD",
    }
    rows = flatten_execution(load("get_pipeline_execution.json"), summary)
    (ex,) = rows["executions"]
    assert (ex["status"], ex["start_time"], ex["last_update_time"]) == (
        "Succeeded",
        datetime(2015, 3, 25, 15, 50, tzinfo=UTC),
        datetime(2015, 3, 25, 15, 54, tzinfo=UTC),
    )
    assert (ex["trigger_type"], ex["trigger_detail"], ex["stop_trigger_reason"]) == (
        "Webhook",
        "arn:x",
        "manual",
    )
    assert (ex["execution_mode"], ex["execution_type"]) == ("SUPERSEDED", "STANDARD")
    assert rows["execution_revisions"][1] == {
        "execution_id": "3137f7cb-7cf7-039j-s83l-d7eu3EXAMPLE",
        "kind": "source",
        "name": "Source",
        "revision_id": "abc",
        "revision_change_id": None,
        "revision_summary": None,
        "revision_url": "",
        "created": None,
    }


def test_seed_get_pipeline_state_rows():
    response = load("get_pipeline_state.json")
    rows = flatten_pipeline_state(response, SNAP)
    digest = "ae78dc9a4faf52d0baef2f8a0f396833c6060f7094608c11e95c55abe5ffadff"
    assert rows["stage_states"] == [
        {
            "snapshot_at": SNAP,
            "state_hash": digest,
            "pipeline_version": 123,
            "pipeline_created": T2015,
            "pipeline_updated": T2015,
            "stage": "string",
            "stage_index": 0,
            "inbound_execution_id": "string",
            "inbound_execution_status": "Cancelled",
            "inbound_execution_type": "STANDARD",
            "inbound_executions_json": (
                '[{"pipelineExecutionId":"string","status":"Cancelled","type":"STANDARD"}]'
            ),
            "transition_enabled": True,
            "transition_last_changed_by": "string",
            "transition_last_changed_at": T2015,
            "transition_disabled_reason": "string",
            "latest_execution_id": "string",
            "latest_execution_status": "Cancelled",
            "latest_execution_type": "STANDARD",
            "before_entry_status": "InProgress",
            "before_entry_summary": "string",
            "on_success_status": "InProgress",
            "on_success_summary": "string",
            "on_failure_status": "InProgress",
            "on_failure_summary": "string",
            "retry_auto_attempt": 123,
            "retry_manual_attempt": 123,
            "retry_latest_trigger": "AutomatedStageRetry",
        }
    ]
    assert rows["action_states"] == [
        {
            "snapshot_at": SNAP,
            "stage": "string",
            "action": "string",
            "action_index": 0,
            "revision_id": "string",
            "revision_change_id": "string",
            "revision_created": T2015,
            "action_execution_id": "string",
            "status": "InProgress",
            "summary": "string",
            "last_status_change": T2015,
            "token": "string",
            "last_updated_by": "string",
            "external_execution_id": "string",
            "external_execution_url": "string",
            "percent_complete": 123,
            "error_code": "string",
            "error_message": "string",
            "log_stream_arn": "string",
            "entity_url": "string",
            "revision_url": "string",
        }
    ]
    rule = {
        "snapshot_at": SNAP,
        "stage": "string",
        "condition_index": 0,
        "condition_status": "InProgress",
        "condition_summary": "string",
        "condition_last_status_change": T2015,
        "rule_name": "string",
        "rule_revision_id": "string",
        "rule_revision_change_id": "string",
        "rule_revision_created": T2015,
        "rule_execution_id": "string",
        "rule_status": "InProgress",
        "rule_summary": "string",
        "rule_last_status_change": T2015,
        "rule_token": "string",
        "rule_last_updated_by": "string",
        "rule_external_execution_id": "string",
        "rule_external_execution_url": "string",
        "rule_error_code": "string",
        "rule_error_message": "string",
        "entity_url": "string",
        "revision_url": "string",
    }
    assert rows["condition_states"] == [
        {**rule, "condition_type": t} for t in ("BeforeEntry", "OnSuccess", "OnFailure")
    ]
    for table, table_rows in rows.items():
        assert to_arrow(table, table_rows).num_rows == len(table_rows)


def test_state_hash_ignores_response_metadata_and_timestamp_representation():
    response = load("get_pipeline_state.json")
    as_boto3 = json.loads(json.dumps(response))
    as_boto3["created"] = datetime(2015, 1, 1, tzinfo=UTC)
    as_boto3["updated"] = T2015.astimezone(timezone(timedelta(hours=-5)))  # same instant
    as_boto3["ResponseMetadata"] = {"RequestId": "x", "HTTPStatusCode": 200}
    raw = dict(response, created=datetime(2015, 1, 1, tzinfo=UTC), updated=T2015)
    assert state_hash(as_boto3) == state_hash(raw)
    changed = json.loads(json.dumps(response))
    changed["stageStates"][0]["latestExecution"]["status"] = "Succeeded"
    assert state_hash(changed) != state_hash(response)


def test_condition_without_rule_states_is_one_row_with_null_rule():
    response = {
        "pipelineName": "p",
        "stageStates": [
            {
                "stageName": "Deploy",
                "onFailureConditionState": {
                    "latestExecution": {"status": "Failed", "summary": "rolled back"},
                    "conditionStates": [{"latestExecution": {"status": "Failed"}}],
                },
            }
        ],
    }
    rows = flatten_pipeline_state(response, SNAP)
    (cond,) = rows["condition_states"]
    assert (cond["condition_type"], cond["condition_index"], cond["rule_name"]) == (
        "OnFailure",
        0,
        None,
    )
    (stage,) = rows["stage_states"]
    assert (stage["on_failure_status"], stage["on_failure_summary"]) == ("Failed", "rolled back")
    assert stage["before_entry_status"] is None and rows["action_states"] == []


def test_ts_accepts_what_the_service_and_boto3_send():
    assert ts(None) is None
    assert ts(1427298837.7689769) == datetime(2015, 3, 25, 15, 53, 57, 768977, tzinfo=UTC)
    assert ts(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)
    assert ts("2026-01-01T01:00:00Z") == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert ts(datetime(2026, 1, 1, 2, tzinfo=UTC).astimezone()) == datetime(
        2026, 1, 1, 2, tzinfo=UTC
    )


def test_to_json_is_canonical():
    assert to_json(None) is None
    assert to_json([]) == "[]"
    assert to_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'
    assert to_json({"t": datetime(2026, 1, 1, tzinfo=UTC)}) == '{"t":"2026-01-01T00:00:00+00:00"}'


# --- every leaf of every response shape lands somewhere ------------------------------

MODEL = botocore.session.get_session().get_service_model("codepipeline")
BASE = datetime(2020, 1, 1, tzinfo=UTC)


class Synth:
    """A response with a unique, recognisable value at every leaf of a shape."""

    def __init__(self) -> None:
        self.n = itertools.count(1)
        self.leaves: dict[str, object] = {}  # path -> value

    def make(self, shape, path: str):
        t = shape.type_name
        if t == "structure":
            return {k: self.make(m, f"{path}.{k}") for k, m in shape.members.items()}
        if t == "list":
            return [self.make(shape.member, f"{path}[]")]
        if t == "map":
            key = f"k{next(self.n):04d}x"
            self.leaves[f"{path}{{key}}"] = key
            return {key: self.make(shape.value, f"{path}{{}}")}
        n = next(self.n)
        value = {
            "string": f"v{n:04d}x",
            "integer": 500000 + n,
            "long": 500000 + n,
            "timestamp": BASE + timedelta(seconds=n),
            "boolean": True,
        }[t]
        if t != "boolean":
            self.leaves[path] = value
        return value


def _found(value, rows: list[dict]) -> bool:
    for row in rows:
        for col, v in row.items():
            if v == value:
                return True
            if col.endswith("_json") and isinstance(v, str):
                token = value.isoformat() if isinstance(value, datetime) else str(value)
                if token in v:
                    return True
    return False


def _missing(leaves: dict, rows: list[dict], ignore: set[str]) -> list[str]:
    return [p for p, v in leaves.items() if p not in ignore and not _found(v, rows)]


def _output(op: str):
    return MODEL.operation_model(op).output_shape


def test_get_pipeline_drops_no_field():
    s = Synth()
    response = s.make(_output("GetPipeline"), "")
    row, actions = flatten_pipeline(response)
    assert _missing(s.leaves, [row, *actions], set()) == []
    assert to_arrow("pipelines", [row]).num_rows == 1
    assert to_arrow("pipeline_actions", actions).num_rows == 1


def test_get_pipeline_execution_and_summary_drop_no_field():
    s = Synth()
    detail = s.make(_output("GetPipelineExecution"), "")
    summary = s.make(MODEL.shape_for("PipelineExecutionSummary"), "summary")
    summary["pipelineExecutionId"] = detail["pipelineExecution"]["pipelineExecutionId"]
    rows = flatten_execution(detail, summary)
    # name is the partition; the summary's duplicates of detail fields are shadowed
    ignore = {
        ".pipelineExecution.pipelineName",
        "summary.pipelineExecutionId",
        "summary.status",
        "summary.statusSummary",
        "summary.trigger.triggerType",
        "summary.trigger.triggerDetail",
        "summary.executionMode",
        "summary.executionType",
        "summary.rollbackMetadata.rollbackTargetPipelineExecutionId",
    }
    all_rows = [r for table_rows in rows.values() for r in table_rows]
    assert _missing(s.leaves, all_rows, ignore) == []
    for table, table_rows in rows.items():
        assert to_arrow(table, table_rows).num_rows == len(table_rows)


@pytest.mark.parametrize(
    ("shape", "flatten", "table"),
    [
        ("ActionExecutionDetail", flatten_action_execution, "action_executions"),
        ("RuleExecutionDetail", flatten_rule_execution, "rule_executions"),
    ],
)
def test_action_and_rule_execution_details_drop_no_field(shape, flatten, table):
    s = Synth()
    detail = s.make(MODEL.shape_for(shape), "")
    row = flatten(detail)
    assert _missing(s.leaves, [row], set()) == []
    assert set(row) <= set(TABLES[table].columns)
    assert to_arrow(table, [row]).num_rows == 1


def test_get_pipeline_state_drops_no_field():
    s = Synth()
    response = s.make(_output("GetPipelineState"), "")
    rows = flatten_pipeline_state(response, SNAP)
    all_rows = [r for table_rows in rows.values() for r in table_rows]
    assert _missing(s.leaves, all_rows, {".pipelineName"}) == []


def test_action_execution_row_values():
    detail = {
        "pipelineExecutionId": "e-1",
        "actionExecutionId": "a-1",
        "pipelineVersion": 3,
        "stageName": "Build",
        "actionName": "Compile",
        "startTime": datetime(2026, 10, 1, 10, tzinfo=UTC),
        "lastUpdateTime": datetime(2026, 10, 1, 10, 5, tzinfo=UTC),
        "status": "Failed",
        "input": {
            "actionTypeId": {
                "category": "Build",
                "owner": "AWS",
                "provider": "CodeBuild",
                "version": "1",
            },
            "configuration": {"ProjectName": "web"},
        },
        "output": {"executionResult": {"errorDetails": {"code": "JobFailed", "message": "boom"}}},
    }
    row = flatten_action_execution(detail)
    assert {k: v for k, v in row.items() if v is not None} == {
        "execution_id": "e-1",
        "action_execution_id": "a-1",
        "pipeline_version": 3,
        "stage": "Build",
        "action": "Compile",
        "status": "Failed",
        "start_time": datetime(2026, 10, 1, 10, tzinfo=UTC),
        "last_update_time": datetime(2026, 10, 1, 10, 5, tzinfo=UTC),
        "category": "Build",
        "owner": "AWS",
        "provider": "CodeBuild",
        "provider_version": "1",
        "configuration_json": '{"ProjectName":"web"}',
        "error_code": "JobFailed",
        "error_message": "boom",
    }


def test_has_stage_conditions_reads_declarations_and_their_stored_json():
    from recorder.flatten import has_stage_conditions, to_json

    plain = {"stages": [{"name": "Build", "actions": []}, {"name": "Deploy"}]}
    gated = {
        "stages": [
            {"name": "Build"},
            {"name": "Deploy", "beforeEntry": {"conditions": [{"result": "FAIL", "rules": []}]}},
        ]
    }
    empty = {"stages": [{"name": "Deploy", "onSuccess": {"conditions": []}}]}
    assert [has_stage_conditions(d) for d in (plain, gated, empty, None)] == [
        False,
        True,
        False,
        False,
    ]
    assert has_stage_conditions(to_json(gated)) is True
