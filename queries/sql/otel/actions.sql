-- `cprec export otel`: the action executions (every attempt) of otel_executions, with
-- their attempt number within their action (1 = first, by start time); `_order` is the
-- order of the spans within an execution.
SELECT
    account_id, region, pipeline, execution_id, action_execution_id, stage, action,
    status, start_time, last_update_time AS end_time, category, owner, provider,
    external_execution_id, external_execution_url, external_execution_summary,
    error_code, error_message,
    row_number() OVER (
        PARTITION BY account_id, region, pipeline, execution_id, stage, action
        ORDER BY start_time, last_update_time, action_execution_id
    ) AS attempt,
    row_number() OVER (
        ORDER BY start_time, stage, action, last_update_time, action_execution_id
    ) AS _order
FROM action_executions
SEMI JOIN otel_executions USING (account_id, region, pipeline, execution_id)
WHERE start_time IS NOT NULL AND last_update_time IS NOT NULL
