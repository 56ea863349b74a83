-- Failed executions, newest first, with the step that failed last: action or condition rule.
-- Executions with status Failed whose start is in the window. The failing step is the
-- Failed action execution or Failed condition rule execution of the execution that was
-- updated last (then started last): `step` says which ('action' or 'rule'), `action`
-- holds the action's or the rule's name, with its error code and message. A rule that
-- failed after the stage's actions succeeded is what failed the execution, so it wins
-- over an earlier failed action that a retry fixed. No step recorded: NULLs. region and
-- account_id last (they locate the execution in the AWS console).
WITH failed_steps AS (
    SELECT account_id, region, pipeline, execution_id, 'action' AS step, stage, action,
        error_code, error_message, start_time, last_update_time
    FROM action_executions
    WHERE status = 'Failed'
    UNION ALL
    SELECT account_id, region, pipeline, execution_id, 'rule', stage, rule, error_code,
        error_message, start_time, last_update_time
    FROM rule_executions
    WHERE status = 'Failed'
),
latest_step AS (
    SELECT *
    FROM failed_steps
    QUALIFY row_number() OVER (
        PARTITION BY account_id, region, pipeline, execution_id
        ORDER BY last_update_time DESC NULLS LAST, start_time DESC NULLS LAST, step, action
    ) = 1
)
SELECT
    e.pipeline,
    e.start_time,
    e.execution_id,
    s.stage,
    s.step,
    s.action,
    s.error_code,
    s.error_message,
    e.region,
    e.account_id
FROM executions AS e
LEFT JOIN latest_step AS s USING (account_id, region, pipeline, execution_id)
WHERE e.status = 'Failed'
    AND in_window(e.start_time, $since, $until)
    AND pipeline_matches(e.pipeline, $pipelines)
ORDER BY e.start_time DESC, e.pipeline, e.execution_id;
