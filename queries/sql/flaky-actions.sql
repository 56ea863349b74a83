-- Actions that failed and then succeeded within the same execution (a retry fixed them).
-- Per pipeline, stage and action, over the executions in which the action ran (first start
-- in the window): executions, flaky = those where a Failed attempt was followed by a later
-- Succeeded one, flaky_rate = flaky / executions, last_flaky = start of the latest flaky
-- execution's first attempt. Only actions with at least one flaky execution.
WITH per_execution AS (
    SELECT
        pipeline, stage, action, execution_id,
        min(start_time) AS first_start,
        coalesce(
            min(start_time) FILTER (WHERE status = 'Failed')
                < max(start_time) FILTER (WHERE status = 'Succeeded'),
            false
        ) AS flaky
    FROM action_executions
    WHERE pipeline_matches(pipeline, $pipelines)
    GROUP BY account_id, region, pipeline, stage, action, execution_id
)
SELECT
    pipeline,
    stage,
    action,
    count(*) AS executions,
    count(*) FILTER (WHERE flaky) AS flaky,
    count(*) FILTER (WHERE flaky) / count(*) AS flaky_rate,
    max(first_start) FILTER (WHERE flaky) AS last_flaky
FROM per_execution
WHERE in_window(first_start, $since, $until)
GROUP BY pipeline, stage, action
HAVING count(*) FILTER (WHERE flaky) > 0
ORDER BY flaky DESC, pipeline, stage, action;
