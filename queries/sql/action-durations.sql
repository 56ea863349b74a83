-- Action execution durations per pipeline, stage and action: attempts, p50/p90/p95, max, mean.
-- Over action executions in a terminal status (Succeeded, Failed, Abandoned) whose start is
-- in the window; each attempt counts (a retried action contributes every attempt).
-- (relations/action_stats.sql computes the figures.)
SELECT
    pipeline, stage, action, attempts, q[1] AS p50_s, q[2] AS p90_s, q[3] AS p95_s, max_s, mean_s
FROM action_stats($since, $until)
WHERE pipeline_matches(pipeline, $pipelines)
ORDER BY pipeline, first_start, stage, action;
