-- Stage run durations per pipeline and stage: count, p50/p90/p95, max and mean seconds.
-- Over terminal stage runs (no action execution InProgress) whose start is in the window;
-- percentiles are quantile_cont (linear interpolation). Stages in order of first start.
-- The three quantiles come from one list-valued quantile_cont: one sort per group, not three.
WITH per_stage AS (
    SELECT
        pipeline,
        stage,
        count(*) AS executions,
        quantile_cont(duration_s, [0.5, 0.9, 0.95]) AS q,
        max(duration_s) AS max_s,
        mean_exact(duration_s) AS mean_s,
        min(start_time) AS first_start
    FROM stage_runs
    WHERE terminal
        AND in_window(start_time, $since, $until)
        AND pipeline_matches(pipeline, $pipelines)
    GROUP BY pipeline, stage
)
SELECT pipeline, stage, executions, q[1] AS p50_s, q[2] AS p90_s, q[3] AS p95_s, max_s, mean_s
FROM per_stage
ORDER BY pipeline, first_start, stage;
