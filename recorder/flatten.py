"""Pure flatteners: one CodePipeline response in, table rows out.

Each function maps every field of its response shape to a column or to a JSON
column; nothing is dropped silently. Required fields are read as `d["x"]` (bad
data fails loudly), optional ones with `.get()` (missing is None). Values are
stored as the service sent them: an empty string stays an empty string.

Rows carry only the response's own columns; the collector adds `account_id`,
`region`, `run_id`, `recorded_at` and the `dt` partition. Responses may come from
boto3 (timestamps as datetimes) or as raw JSON (epoch seconds): both work.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any


def ts(value: Any) -> datetime | None:
    """A service timestamp (datetime, epoch seconds or ISO text) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return ts(value).isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def to_json(value: Any) -> str | None:
    """Canonical JSON text (sorted keys, compact, UTC ISO timestamps); None stays NULL."""
    if value is None:
        return None
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


def without_metadata(response: dict) -> dict:
    """The response minus boto3's ResponseMetadata (request ids change on every call)."""
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def state_hash(response: dict) -> str:
    """sha256 of the canonical JSON of a GetPipelineState response."""
    return hashlib.sha256(to_json(without_metadata(response)).encode()).hexdigest()


# --- GetPipeline -----------------------------------------------------------------


def flatten_pipeline(response: dict) -> tuple[dict, list[dict]]:
    """GetPipeline → (pipelines row, pipeline_actions rows)."""
    p = response["pipeline"]
    meta = response.get("metadata") or {}
    stages = p.get("stages") or []
    version = p.get("version")
    row = {
        "pipeline_version": version,
        "pipeline_type": p.get("pipelineType"),
        "execution_mode": p.get("executionMode"),
        "pipeline_arn": meta.get("pipelineArn"),
        "role_arn": p.get("roleArn"),
        "created": ts(meta.get("created")),
        "updated": ts(meta.get("updated")),
        "polling_disabled_at": ts(meta.get("pollingDisabledAt")),
        "stage_count": len(stages),
        "action_count": sum(len(s.get("actions") or []) for s in stages),
        "artifact_store_json": to_json(p.get("artifactStore")),
        "artifact_stores_json": to_json(p.get("artifactStores")),
        "variables_json": to_json(p.get("variables")),
        "triggers_json": to_json(p.get("triggers")),
        "definition_json": to_json(p),
    }
    actions = []
    for stage_index, stage in enumerate(stages):
        stage_rest = to_json({k: v for k, v in stage.items() if k != "actions"})
        for action_index, a in enumerate(stage.get("actions") or []):
            type_id = a.get("actionTypeId") or {}
            actions.append(
                {
                    "pipeline_version": version,
                    "stage": stage["name"],
                    "stage_index": stage_index,
                    "action": a["name"],
                    "action_index": action_index,
                    "run_order": a.get("runOrder"),
                    "category": type_id.get("category"),
                    "owner": type_id.get("owner"),
                    "provider": type_id.get("provider"),
                    "provider_version": type_id.get("version"),
                    "action_region": a.get("region"),
                    "namespace": a.get("namespace"),
                    "role_arn": a.get("roleArn"),
                    "timeout_in_minutes": a.get("timeoutInMinutes"),
                    "configuration_json": to_json(a.get("configuration")),
                    "input_artifacts_json": to_json(a.get("inputArtifacts")),
                    "output_artifacts_json": to_json(a.get("outputArtifacts")),
                    "output_variables_json": to_json(a.get("outputVariables")),
                    "commands_json": to_json(a.get("commands")),
                    "environment_variables_json": to_json(a.get("environmentVariables")),
                    "stage_json": stage_rest,
                }
            )
    return row, actions


# --- ListPipelineExecutions + GetPipelineExecution --------------------------------


def has_stage_conditions(definition: dict | str | None) -> bool:
    """Whether a pipeline declaration (GetPipeline `pipeline`, or its stored JSON) has
    stage conditions: only they produce rule executions."""
    if isinstance(definition, str):
        definition = json.loads(definition)
    for stage in (definition or {}).get("stages") or []:
        for when in ("beforeEntry", "onSuccess", "onFailure"):
            if (stage.get(when) or {}).get("conditions"):
                return True
    return False


def flatten_execution(detail: dict, summary: dict | None = None) -> dict[str, list[dict]]:
    """GetPipelineExecution (+ its ListPipelineExecutions summary) → execution rows.

    The detail is fetched after the summary, so its status is the fresher one; times,
    source revisions and the stop trigger exist only in the summary.
    """
    e = detail["pipelineExecution"]
    s = summary or {}
    execution_id = e["pipelineExecutionId"]
    trigger = e.get("trigger") or s.get("trigger") or {}
    rollback = e.get("rollbackMetadata") or s.get("rollbackMetadata") or {}
    execution = {
        "execution_id": execution_id,
        "status": e.get("status", s.get("status")),
        "status_summary": e.get("statusSummary", s.get("statusSummary")),
        "start_time": ts(s.get("startTime")),
        "last_update_time": ts(s.get("lastUpdateTime")),
        "pipeline_version": e.get("pipelineVersion"),
        "trigger_type": trigger.get("triggerType"),
        "trigger_detail": trigger.get("triggerDetail"),
        "execution_mode": e.get("executionMode", s.get("executionMode")),
        "execution_type": e.get("executionType", s.get("executionType")),
        "rollback_target_execution_id": rollback.get("rollbackTargetPipelineExecutionId"),
        "stop_trigger_reason": (s.get("stopTrigger") or {}).get("reason"),
    }
    revisions = [
        {
            "execution_id": execution_id,
            "kind": "artifact",
            "name": r.get("name"),
            "revision_id": r.get("revisionId"),
            "revision_change_id": r.get("revisionChangeIdentifier"),
            "revision_summary": r.get("revisionSummary"),
            "revision_url": r.get("revisionUrl"),
            "created": ts(r.get("created")),
        }
        for r in e.get("artifactRevisions") or []
    ] + [
        {
            "execution_id": execution_id,
            "kind": "source",
            "name": r.get("actionName"),
            "revision_id": r.get("revisionId"),
            "revision_change_id": None,
            "revision_summary": r.get("revisionSummary"),
            "revision_url": r.get("revisionUrl"),
            "created": None,
        }
        for r in s.get("sourceRevisions") or []
    ]
    variables = [
        {"execution_id": execution_id, "name": v["name"], "resolved_value": v.get("resolvedValue")}
        for v in e.get("variables") or []
    ]
    return {
        "executions": [execution],
        "execution_revisions": revisions,
        "execution_variables": variables,
    }


# --- ListActionExecutions / ListRuleExecutions -------------------------------------


def _result_columns(result: dict) -> dict:
    error = result.get("errorDetails") or {}
    return {
        "external_execution_id": result.get("externalExecutionId"),
        "external_execution_summary": result.get("externalExecutionSummary"),
        "external_execution_url": result.get("externalExecutionUrl"),
        "error_code": error.get("code"),
        "error_message": error.get("message"),
    }


def _detail_columns(d: dict, type_key: str) -> tuple[dict, dict, dict]:
    inp = d.get("input") or {}
    out = d.get("output") or {}
    type_id = inp.get(type_key) or {}
    columns = {
        "execution_id": d["pipelineExecutionId"],
        "pipeline_version": d.get("pipelineVersion"),
        "stage": d.get("stageName"),
        "status": d.get("status"),
        "start_time": ts(d.get("startTime")),
        "last_update_time": ts(d.get("lastUpdateTime")),
        "updated_by": d.get("updatedBy"),
        "category": type_id.get("category"),
        "owner": type_id.get("owner"),
        "provider": type_id.get("provider"),
        "provider_version": type_id.get("version"),
        "role_arn": inp.get("roleArn"),
        "configuration_json": to_json(inp.get("configuration")),
        "resolved_configuration_json": to_json(inp.get("resolvedConfiguration")),
        "input_artifacts_json": to_json(inp.get("inputArtifacts")),
    }
    return columns, inp, out


def flatten_action_execution(detail: dict) -> dict:
    """One ListActionExecutions `actionExecutionDetails` item → action_executions row."""
    row, inp, out = _detail_columns(detail, "actionTypeId")
    result = out.get("executionResult") or {}
    return {
        **row,
        "action_execution_id": detail["actionExecutionId"],
        "action": detail.get("actionName"),
        "action_region": inp.get("region"),
        "namespace": inp.get("namespace"),
        "output_artifacts_json": to_json(out.get("outputArtifacts")),
        "output_variables_json": to_json(out.get("outputVariables")),
        **_result_columns(result),
        "log_stream_arn": result.get("logStreamARN"),
    }


def flatten_rule_execution(detail: dict) -> dict:
    """One ListRuleExecutions `ruleExecutionDetails` item → rule_executions row."""
    row, inp, out = _detail_columns(detail, "ruleTypeId")
    return {
        **row,
        "rule_execution_id": detail["ruleExecutionId"],
        "rule": detail.get("ruleName"),
        "rule_region": inp.get("region"),
        **_result_columns(out.get("executionResult") or {}),
    }


# --- GetPipelineState -----------------------------------------------------------

_CONDITIONS = (
    ("BeforeEntry", "beforeEntryConditionState", "before_entry"),
    ("OnSuccess", "onSuccessConditionState", "on_success"),
    ("OnFailure", "onFailureConditionState", "on_failure"),
)


def flatten_pipeline_state(response: dict, snapshot_at: datetime) -> dict[str, list[dict]]:
    """GetPipelineState → stage_states, action_states and condition_states rows."""
    digest = state_hash(response)
    stages, actions, conditions = [], [], []
    for stage_index, st in enumerate(response.get("stageStates") or []):
        stage = st["stageName"]
        inbound = st.get("inboundExecution") or {}
        transition = st.get("inboundTransitionState") or {}
        latest = st.get("latestExecution") or {}
        retry = st.get("retryStageMetadata") or {}
        row = {
            "snapshot_at": snapshot_at,
            "state_hash": digest,
            "pipeline_version": response.get("pipelineVersion"),
            "pipeline_created": ts(response.get("created")),
            "pipeline_updated": ts(response.get("updated")),
            "stage": stage,
            "stage_index": stage_index,
            "inbound_execution_id": inbound.get("pipelineExecutionId"),
            "inbound_execution_status": inbound.get("status"),
            "inbound_execution_type": inbound.get("type"),
            "inbound_executions_json": to_json(st.get("inboundExecutions")),
            "transition_enabled": transition.get("enabled"),
            "transition_last_changed_by": transition.get("lastChangedBy"),
            "transition_last_changed_at": ts(transition.get("lastChangedAt")),
            "transition_disabled_reason": transition.get("disabledReason"),
            "latest_execution_id": latest.get("pipelineExecutionId"),
            "latest_execution_status": latest.get("status"),
            "latest_execution_type": latest.get("type"),
            "retry_auto_attempt": retry.get("autoStageRetryAttempt"),
            "retry_manual_attempt": retry.get("manualStageRetryAttempt"),
            "retry_latest_trigger": retry.get("latestRetryTrigger"),
        }
        for condition_type, key, prefix in _CONDITIONS:
            cs = st.get(key) or {}
            cs_latest = cs.get("latestExecution") or {}
            row[f"{prefix}_status"] = cs_latest.get("status")
            row[f"{prefix}_summary"] = cs_latest.get("summary")
            for index, cond in enumerate(cs.get("conditionStates") or []):
                conditions += _condition_rows(snapshot_at, stage, condition_type, index, cond)
        stages.append(row)
        for action_index, a in enumerate(st.get("actionStates") or []):
            revision = a.get("currentRevision") or {}
            ex = a.get("latestExecution") or {}
            error = ex.get("errorDetails") or {}
            actions.append(
                {
                    "snapshot_at": snapshot_at,
                    "stage": stage,
                    "action": a.get("actionName"),
                    "action_index": action_index,
                    "revision_id": revision.get("revisionId"),
                    "revision_change_id": revision.get("revisionChangeId"),
                    "revision_created": ts(revision.get("created")),
                    "action_execution_id": ex.get("actionExecutionId"),
                    "status": ex.get("status"),
                    "summary": ex.get("summary"),
                    "last_status_change": ts(ex.get("lastStatusChange")),
                    "token": ex.get("token"),
                    "last_updated_by": ex.get("lastUpdatedBy"),
                    "external_execution_id": ex.get("externalExecutionId"),
                    "external_execution_url": ex.get("externalExecutionUrl"),
                    "percent_complete": ex.get("percentComplete"),
                    "error_code": error.get("code"),
                    "error_message": error.get("message"),
                    "log_stream_arn": ex.get("logStreamARN"),
                    "entity_url": a.get("entityUrl"),
                    "revision_url": a.get("revisionUrl"),
                }
            )
    return {"stage_states": stages, "action_states": actions, "condition_states": conditions}


def _condition_rows(
    snapshot_at: datetime, stage: str, condition_type: str, index: int, cond: dict
) -> list[dict]:
    latest = cond.get("latestExecution") or {}
    base = {
        "snapshot_at": snapshot_at,
        "stage": stage,
        "condition_type": condition_type,
        "condition_index": index,
        "condition_status": latest.get("status"),
        "condition_summary": latest.get("summary"),
        "condition_last_status_change": ts(latest.get("lastStatusChange")),
    }
    rules = cond.get("ruleStates") or []
    if not rules:
        return [{**base, "rule_name": None}]
    rows = []
    for rule in rules:
        revision = rule.get("currentRevision") or {}
        ex = rule.get("latestExecution") or {}
        error = ex.get("errorDetails") or {}
        rows.append(
            {
                **base,
                "rule_name": rule.get("ruleName"),
                "rule_revision_id": revision.get("revisionId"),
                "rule_revision_change_id": revision.get("revisionChangeId"),
                "rule_revision_created": ts(revision.get("created")),
                "rule_execution_id": ex.get("ruleExecutionId"),
                "rule_status": ex.get("status"),
                "rule_summary": ex.get("summary"),
                "rule_last_status_change": ts(ex.get("lastStatusChange")),
                "rule_token": ex.get("token"),
                "rule_last_updated_by": ex.get("lastUpdatedBy"),
                "rule_external_execution_id": ex.get("externalExecutionId"),
                "rule_external_execution_url": ex.get("externalExecutionUrl"),
                "rule_error_code": error.get("code"),
                "rule_error_message": error.get("message"),
                "entity_url": rule.get("entityUrl"),
                "revision_url": rule.get("revisionUrl"),
            }
        )
    return rows
