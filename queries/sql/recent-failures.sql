-- Failed executions, newest first, with the step that failed last: action or condition rule.
-- Executions with status Failed whose start is in the window. The failing step is the
-- Failed action execution or Failed condition rule execution of the execution that was
-- updated last (then started last): `step` says which ('action' or 'rule'), `action`
-- holds the action's or the rule's name, with its error code and message. A rule that
-- failed after the stage's actions succeeded is what failed the execution, so it wins
-- over an earlier failed action that a retry fixed (`failed_executions`). No step recorded:
-- NULLs. region and account_id last (they locate the execution in the AWS console).
SELECT
    pipeline,
    start_time,
    execution_id,
    stage,
    step,
    action,
    error_code,
    error_message,
    region,
    account_id
FROM failed_executions
WHERE in_window(start_time, $since, $until)
    AND pipeline_matches(pipeline, $pipelines)
ORDER BY start_time DESC, pipeline, execution_id;
