-- Action failure rates per pipeline, stage and action: attempts, succeeded, failed, failure_rate.
-- Over action executions in a terminal status (Succeeded, Failed, Abandoned) whose own start
-- is in the window; failed = status Failed; failure_rate = Failed / (Succeeded + Failed), as
-- for executions (an Abandoned attempt reached no outcome).
-- (relations/action_stats.sql computes the figures; failure_rate is _macros.sql's.)
SELECT
    pipeline,
    stage,
    action,
    attempts,
    succeeded,
    failed,
    failure_rate(failed, succeeded) AS failure_rate
FROM action_stats($since, $until)
WHERE pipeline_matches(pipeline, $pipelines)
ORDER BY pipeline, first_start, stage, action;
