-- Failed executions, newest first, with the step that failed last: action or condition rule.
-- Executions with status Failed whose start is in the window. The failing step is the
-- Failed action execution or Failed condition rule execution of the execution that was
-- updated last (then started last): `step` says which ('action' or 'rule'), `action`
-- holds the action's or the rule's name, with its error code and message. A rule that
-- failed after the stage's actions succeeded is what failed the execution, so it wins
-- over an earlier failed action that a retry fixed (`failed_steps`). No step recorded:
-- NULLs. region and account_id last (they locate the execution in the AWS console).
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
LEFT JOIN failed_steps AS s USING (account_id, region, pipeline, execution_id)
WHERE e.status = 'Failed'
    AND in_window(e.start_time, $since, $until)
    AND pipeline_matches(e.pipeline, $pipelines)
ORDER BY e.start_time DESC, e.pipeline, e.execution_id;
