-- `failed_executions` (grain: execution). One row per execution with status Failed, with the step
-- that failed last: the Failed action execution or Failed condition rule execution of the
-- execution that was updated last (then started last; then by step and name). `step` says
-- which ('action' or 'rule'); `action` holds the action's or the rule's name, with its
-- error code and message; NULLs when no failed step is recorded. A rule that failed after
-- the stage's actions succeeded is what failed the execution, so it wins over an earlier
-- failed action a retry fixed.
WITH steps AS (
    SELECT account_id, region, pipeline, execution_id, 'action' AS step, stage, action,
        error_code, error_message, start_time, last_update_time
    FROM {action_executions}
    WHERE status = 'Failed'
    UNION ALL
    SELECT account_id, region, pipeline, execution_id, 'rule', stage, rule, error_code,
        error_message, start_time, last_update_time
    FROM {rule_executions}
    WHERE status = 'Failed'
),
latest AS (
    SELECT *
    FROM steps
    QUALIFY row_number() OVER (
        PARTITION BY account_id, region, pipeline, execution_id
        ORDER BY last_update_time DESC NULLS LAST, start_time DESC NULLS LAST, step, action
    ) = 1
)
SELECT
    e.account_id, e.region, e.pipeline, e.execution_id, e.start_time,
    s.stage, s.step, s.action, s.error_code, s.error_message
FROM {executions} AS e
LEFT JOIN latest AS s USING (account_id, region, pipeline, execution_id)
WHERE e.status = 'Failed'
