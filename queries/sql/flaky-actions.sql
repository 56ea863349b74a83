-- Actions that failed and then succeeded within the same execution (a retry fixed them).
-- Per pipeline, stage and action, over the executions in which the action ran (first start
-- in the window): executions, flaky = those where a Failed attempt was followed by a later
-- Succeeded one, flaky_rate = flaky / executions, last_flaky = start of the latest flaky
-- execution's first attempt. Only actions with at least one flaky execution.
-- (`action_runs` and queries/sql/relations/*_stats.sql compute the figures.)
SELECT
    pipeline,
    stage,
    action,
    runs,
    flaky,
    flaky / runs AS flaky_rate,
    last_flaky
FROM flaky_stats($since, $until)
WHERE flaky > 0 AND pipeline_matches(pipeline, $pipelines)
ORDER BY flaky DESC, pipeline, stage, action;
