-- Failed executions, newest first, with the failing stage, action, error code and message.
-- Executions with status Failed whose start is in the window. The failing action is the
-- latest Failed action execution of the execution; without one (a condition rule failed),
-- the latest Failed rule execution, its rule name in `action`.
WITH failed_steps AS (
    SELECT account_id, region, pipeline, execution_id, stage, action, error_code,
        error_message, start_time, last_update_time
    FROM action_executions
    WHERE status = 'Failed'
    UNION ALL
    SELECT account_id, region, pipeline, execution_id, stage, rule AS action, error_code,
        error_message, start_time, last_update_time
    FROM rule_executions
    WHERE status = 'Failed'
),
latest_step AS (
    SELECT *
    FROM failed_steps
    QUALIFY row_number() OVER (
        PARTITION BY account_id, region, pipeline, execution_id
        ORDER BY last_update_time DESC NULLS LAST, start_time DESC NULLS LAST
    ) = 1
)
SELECT
    e.pipeline,
    e.start_time,
    e.execution_id,
    s.stage,
    s.action,
    s.error_code,
    s.error_message
FROM executions AS e
LEFT JOIN latest_step AS s USING (account_id, region, pipeline, execution_id)
WHERE e.status = 'Failed'
    AND in_window(e.start_time, $since, $until)
    AND pipeline_matches(e.pipeline, $pipelines)
ORDER BY e.start_time DESC, e.pipeline, e.execution_id;
