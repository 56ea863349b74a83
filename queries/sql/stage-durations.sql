-- Stage run durations per pipeline and stage: count, p50/p90/p95, max and mean seconds.
-- Over terminal stage runs (no action execution InProgress) whose start is in the window;
-- percentiles are quantile_cont (linear interpolation). Stages in order of first start.
SELECT
    pipeline,
    stage,
    count(*) AS executions,
    quantile_cont(duration_s, 0.5) AS p50_s,
    quantile_cont(duration_s, 0.9) AS p90_s,
    quantile_cont(duration_s, 0.95) AS p95_s,
    max(duration_s) AS max_s,
    avg(duration_s) AS mean_s
FROM stage_runs
WHERE terminal
    AND in_window(start_time, $since, $until)
    AND pipeline_matches(pipeline, $pipelines)
GROUP BY pipeline, stage
ORDER BY pipeline, min(start_time), stage;
