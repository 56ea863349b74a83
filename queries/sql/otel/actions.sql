-- `cprec export otel`: the action executions (every attempt) of the executions named by
-- $keys ('account|region|pipeline|execution_id'), with their stage's rank in the
-- execution and their attempt number within their action (1 = first, by start time).
SELECT
    account_id, region, pipeline, execution_id, action_execution_id, stage, action,
    status, start_time, last_update_time AS end_time, category, owner, provider,
    external_execution_id, external_execution_url, external_execution_summary,
    error_code, error_message,
    row_number() OVER (
        PARTITION BY account_id, region, pipeline, execution_id, stage, action
        ORDER BY start_time, last_update_time, action_execution_id
    ) AS attempt
FROM action_executions
WHERE concat_ws('|', account_id, region, pipeline, execution_id) IN (SELECT unnest($keys))
    AND start_time IS NOT NULL AND last_update_time IS NOT NULL
ORDER BY account_id, region, pipeline, execution_id, start_time, stage, action, attempt
