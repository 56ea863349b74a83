"""One canonical pyarrow schema per table (the storage contract in DESIGN.md).

Columns are only ever added, all nullable. Partition keys (`pipeline`, `dt`) live
in the path, never in the files. Every row carries account_id, region, run_id and
recorded_at. Nested structures that have no fixed shape are kept as JSON text
columns (suffix `_json`) so that no field of a response is silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

# The statuses that end a pipeline execution and an action execution (the CodePipeline
# API reference, PipelineExecution.status and ActionExecution.status). The one list: the
# collector's cursor reads it, and the SQL macros execution_terminal and action_terminal
# are made from it (recorder/derive.py).
TERMINAL_EXECUTION = ("Cancelled", "Failed", "Stopped", "Succeeded", "Superseded")
TERMINAL_ACTION = ("Abandoned", "Failed", "Succeeded")

TS = pa.timestamp("us", tz="UTC")
S = pa.string()
I = pa.int64()  # noqa: E741
B = pa.bool_()

COMMON = [("account_id", S), ("region", S), ("run_id", S), ("recorded_at", TS)]


@dataclass(frozen=True)
class Table:
    name: str
    schema: pa.Schema
    key: tuple[str, ...]  # natural key besides account_id, region, pipeline
    per_pipeline: bool = True  # False: collection_runs/dt=.../

    @property
    def columns(self) -> list[str]:
        return self.schema.names


def _table(name: str, key: tuple[str, ...], cols: list[tuple[str, pa.DataType]], **kw) -> Table:
    return Table(name, pa.schema(COMMON + cols), key, **kw)


_ERR = [("error_code", S), ("error_message", S)]

TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        _table(
            "pipelines",
            ("pipeline_version",),
            [
                ("pipeline_version", I),
                ("pipeline_type", S),
                ("execution_mode", S),
                ("pipeline_arn", S),
                ("role_arn", S),
                ("created", TS),
                ("updated", TS),
                ("polling_disabled_at", TS),
                ("stage_count", I),
                ("action_count", I),
                ("artifact_store_json", S),
                ("artifact_stores_json", S),
                ("variables_json", S),
                ("triggers_json", S),
                ("definition_json", S),  # the full GetPipeline `pipeline` structure
            ],
        ),
        _table(
            "pipeline_actions",
            ("pipeline_version", "stage", "action"),
            [
                ("pipeline_version", I),
                ("stage", S),
                ("stage_index", I),
                ("action", S),
                ("action_index", I),
                ("run_order", I),
                ("category", S),
                ("owner", S),
                ("provider", S),
                ("provider_version", S),
                ("action_region", S),
                ("namespace", S),
                ("role_arn", S),
                ("timeout_in_minutes", I),
                ("configuration_json", S),
                ("input_artifacts_json", S),
                ("output_artifacts_json", S),
                ("output_variables_json", S),
                ("commands_json", S),
                ("environment_variables_json", S),
                # the stage declaration minus its actions (blockers, conditions, on_failure...)
                ("stage_json", S),
            ],
        ),
        _table(
            "executions",
            ("execution_id",),
            [
                ("execution_id", S),
                ("status", S),
                ("status_summary", S),
                ("start_time", TS),
                ("last_update_time", TS),
                ("pipeline_version", I),
                ("trigger_type", S),
                ("trigger_detail", S),
                ("execution_mode", S),
                ("execution_type", S),
                ("rollback_target_execution_id", S),
                ("stop_trigger_reason", S),
            ],
        ),
        _table(
            "execution_revisions",
            ("execution_id", "kind", "name"),
            [
                ("execution_id", S),
                # 'artifact' (GetPipelineExecution) | 'source' (ListPipelineExecutions)
                ("kind", S),
                ("name", S),  # artifact name, or source action name
                ("revision_id", S),
                ("revision_change_id", S),
                ("revision_summary", S),
                ("revision_url", S),
                ("created", TS),
            ],
        ),
        _table(
            "execution_variables",
            ("execution_id", "name"),
            [("execution_id", S), ("name", S), ("resolved_value", S)],
        ),
        _table(
            "action_executions",
            ("action_execution_id",),
            [
                ("execution_id", S),
                ("action_execution_id", S),
                ("pipeline_version", I),
                ("stage", S),
                ("action", S),
                ("status", S),
                ("start_time", TS),
                ("last_update_time", TS),
                ("updated_by", S),
                ("category", S),
                ("owner", S),
                ("provider", S),
                ("provider_version", S),
                ("role_arn", S),
                ("action_region", S),
                ("namespace", S),
                ("configuration_json", S),
                ("resolved_configuration_json", S),
                ("input_artifacts_json", S),
                ("output_artifacts_json", S),
                ("output_variables_json", S),
                ("external_execution_id", S),
                ("external_execution_summary", S),
                ("external_execution_url", S),
                *_ERR,
                ("log_stream_arn", S),
            ],
        ),
        _table(
            "rule_executions",
            ("rule_execution_id",),
            [
                ("execution_id", S),
                ("rule_execution_id", S),
                ("pipeline_version", I),
                ("stage", S),
                ("rule", S),
                ("status", S),
                ("start_time", TS),
                ("last_update_time", TS),
                ("updated_by", S),
                ("category", S),
                ("owner", S),
                ("provider", S),
                ("provider_version", S),
                ("role_arn", S),
                ("rule_region", S),
                ("configuration_json", S),
                ("resolved_configuration_json", S),
                ("input_artifacts_json", S),
                ("external_execution_id", S),
                ("external_execution_summary", S),
                ("external_execution_url", S),
                *_ERR,
            ],
        ),
        _table(
            "stage_states",
            ("snapshot_at", "stage"),
            [
                ("snapshot_at", TS),
                # sha256 of the canonical JSON of the whole GetPipelineState response
                ("state_hash", S),
                ("pipeline_version", I),
                ("pipeline_created", TS),
                ("pipeline_updated", TS),
                ("stage", S),
                ("stage_index", I),
                ("inbound_execution_id", S),
                ("inbound_execution_status", S),
                ("inbound_execution_type", S),
                ("inbound_executions_json", S),
                ("transition_enabled", B),
                ("transition_last_changed_by", S),
                ("transition_last_changed_at", TS),
                ("transition_disabled_reason", S),
                ("latest_execution_id", S),
                ("latest_execution_status", S),
                ("latest_execution_type", S),
                ("before_entry_status", S),
                ("before_entry_summary", S),
                ("on_success_status", S),
                ("on_success_summary", S),
                ("on_failure_status", S),
                ("on_failure_summary", S),
                ("retry_auto_attempt", I),
                ("retry_manual_attempt", I),
                ("retry_latest_trigger", S),
            ],
        ),
        _table(
            "action_states",
            ("snapshot_at", "stage", "action"),
            [
                ("snapshot_at", TS),
                ("stage", S),
                ("action", S),
                ("action_index", I),
                ("revision_id", S),
                ("revision_change_id", S),
                ("revision_created", TS),
                ("action_execution_id", S),
                ("status", S),
                ("summary", S),
                ("last_status_change", TS),
                ("token", S),
                ("last_updated_by", S),
                ("external_execution_id", S),
                ("external_execution_url", S),
                ("percent_complete", I),
                *_ERR,
                ("log_stream_arn", S),
                ("entity_url", S),
                ("revision_url", S),
            ],
        ),
        _table(
            "condition_states",
            ("snapshot_at", "stage", "condition_type", "condition_index", "rule_name"),
            [
                ("snapshot_at", TS),
                ("stage", S),
                ("condition_type", S),  # BeforeEntry | OnSuccess | OnFailure
                ("condition_index", I),
                ("rule_name", S),  # NULL for a condition that reports no rule states
                ("condition_status", S),
                ("condition_summary", S),
                ("condition_last_status_change", TS),
                ("rule_revision_id", S),
                ("rule_revision_change_id", S),
                ("rule_revision_created", TS),
                ("rule_execution_id", S),
                ("rule_status", S),
                ("rule_summary", S),
                ("rule_last_status_change", TS),
                ("rule_token", S),
                ("rule_last_updated_by", S),
                ("rule_external_execution_id", S),
                ("rule_external_execution_url", S),
                ("rule_error_code", S),
                ("rule_error_message", S),
                ("entity_url", S),
                ("revision_url", S),
            ],
        ),
        _table(
            "collection_runs",
            ("run_id",),
            [
                ("started_at", TS),
                ("finished_at", TS),
                ("status", S),  # succeeded | partial | failed | stopped (--max-duration)
                ("cprec_version", S),
                ("since", TS),
                ("pipelines_listed", I),
                ("pipelines_recorded", I),
                ("pipelines_failed", I),
                ("pipelines_vanished", I),
                ("api_calls", I),
                ("api_calls_json", S),  # {"GetPipelineState": 20, ...}
                ("throttles", I),
                ("retries", I),
                ("rows_written_json", S),  # {"executions": 12, ...}
                ("errors_json", S),  # [{"pipeline": ..., "error": ...}]
                # added by the collector (nullable, appended)
                ("api_attempts_json", S),  # HTTP requests by operation, retries included
                ("transient_errors", I),  # 5xx answers and broken connections retried
                ("pipelines_unfinished", I),  # stopped at --max-duration, continued next run
            ],
            per_pipeline=False,
        ),
    ]
}

# Tables whose rows are re-recorded as executions progress; views keep the latest.
EXECUTION_TABLES = (
    "executions",
    "execution_revisions",
    "execution_variables",
    "action_executions",
    "rule_executions",
)
STATE_TABLES = ("stage_states", "action_states", "condition_states")
DEFINITION_TABLES = ("pipelines", "pipeline_actions")


def empty_table(name: str) -> pa.Table:
    return TABLES[name].schema.empty_table()


def to_arrow(name: str, rows: list[dict]) -> pa.Table:
    """Rows (dicts keyed by column name) to a table with the canonical schema.

    A key missing from a row is NULL; a key not in the schema is a bug and raises.
    """
    schema = TABLES[name].schema
    extra = {k for r in rows for k in r} - set(schema.names)
    if extra:
        raise KeyError(f"{name}: unknown columns {sorted(extra)}")
    return pa.Table.from_pylist(rows, schema=schema)
