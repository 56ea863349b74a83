-- Action execution durations per pipeline, stage and action: count, p50/p90/p95, max, mean.
-- Over action executions in a terminal status (Succeeded, Failed, Abandoned) whose start is
-- in the window; each attempt counts (a retried action contributes every attempt).
WITH per_action AS (
    SELECT
        pipeline,
        stage,
        action,
        count(*) AS executions,
        quantile_cont(seconds_between(start_time, last_update_time), [0.5, 0.9, 0.95]) AS q,
        max(seconds_between(start_time, last_update_time)) AS max_s,
        mean_exact(seconds_between(start_time, last_update_time)) AS mean_s,
        min(start_time) AS first_start
    FROM action_executions
    WHERE action_terminal(status)
        AND in_window(start_time, $since, $until)
        AND pipeline_matches(pipeline, $pipelines)
    GROUP BY pipeline, stage, action
)
SELECT
    pipeline, stage, action, executions, q[1] AS p50_s, q[2] AS p90_s, q[3] AS p95_s, max_s, mean_s
FROM per_action
ORDER BY pipeline, first_start, stage, action;
