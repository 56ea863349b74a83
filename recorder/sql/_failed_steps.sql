-- The SELECT behind `failed_steps`: a view over `action_executions` and `rule_executions`
-- (recorder/views.py), or materialised for the executions a refresh touched
-- (recorder/cache.py). One row per execution with a failed step: the Failed action
-- execution or Failed condition rule execution that was updated last (then started last;
-- then by step and name). `step` says which ('action' or 'rule'); `action` holds the
-- action's or the rule's name. A rule that failed after the stage's actions succeeded is
-- what failed the execution, so it wins over an earlier failed action a retry fixed.
WITH steps AS (
    SELECT account_id, region, pipeline, execution_id, 'action' AS step, stage, action,
        error_code, error_message, start_time, last_update_time
    FROM action_executions
    WHERE status = 'Failed'
    UNION ALL
    SELECT account_id, region, pipeline, execution_id, 'rule', stage, rule, error_code,
        error_message, start_time, last_update_time
    FROM rule_executions
    WHERE status = 'Failed'
)
SELECT account_id, region, pipeline, execution_id, step, stage, action, error_code,
    error_message
FROM steps
QUALIFY row_number() OVER (
    PARTITION BY account_id, region, pipeline, execution_id
    ORDER BY last_update_time DESC NULLS LAST, start_time DESC NULLS LAST, step, action
) = 1
