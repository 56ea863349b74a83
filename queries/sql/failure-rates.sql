-- Action failure rates per pipeline, stage and action: attempts, failed, failure_rate.
-- Over action executions in a terminal status (Succeeded, Failed, Abandoned) whose own start
-- is in the window; failed = status Failed; failure_rate = failed / attempts.
-- (recorder/sql/_stats.sql computes the figures.)
SELECT
    pipeline,
    stage,
    action,
    executions AS attempts,
    failed,
    failed / executions AS failure_rate
FROM action_stats($since, $until)
WHERE pipeline_matches(pipeline, $pipelines)
ORDER BY pipeline, first_start, stage, action;
