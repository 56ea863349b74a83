-- Action execution durations per pipeline, stage and action: count, p50/p90/p95, max, mean.
-- Over action executions in a terminal status (Succeeded, Failed, Abandoned) whose start is
-- in the window; each attempt counts (a retried action contributes every attempt).
SELECT
    pipeline,
    stage,
    action,
    count(*) AS executions,
    quantile_cont(seconds_between(start_time, last_update_time), 0.5) AS p50_s,
    quantile_cont(seconds_between(start_time, last_update_time), 0.9) AS p90_s,
    quantile_cont(seconds_between(start_time, last_update_time), 0.95) AS p95_s,
    max(seconds_between(start_time, last_update_time)) AS max_s,
    avg(seconds_between(start_time, last_update_time)) AS mean_s
FROM action_executions
WHERE action_terminal(status)
    AND in_window(start_time, $since, $until)
    AND pipeline_matches(pipeline, $pipelines)
GROUP BY pipeline, stage, action
ORDER BY pipeline, min(start_time), stage, action;
