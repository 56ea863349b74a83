-- Action failure rates per pipeline, stage and action: attempts, failed, failure_rate.
-- Over action executions in a terminal status (Succeeded, Failed, Abandoned) whose own start
-- is in the window; failed = status Failed; failure_rate = failed / attempts.
SELECT
    pipeline,
    stage,
    action,
    count(*) AS attempts,
    count(*) FILTER (WHERE status = 'Failed') AS failed,
    count(*) FILTER (WHERE status = 'Failed') / count(*) AS failure_rate
FROM action_executions
WHERE action_terminal(status)
    AND in_window(start_time, $since, $until)
    AND pipeline_matches(pipeline, $pipelines)
GROUP BY pipeline, stage, action
ORDER BY pipeline, min(start_time), stage, action;
