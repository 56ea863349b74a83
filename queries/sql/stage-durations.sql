-- Stage run durations per pipeline and stage: runs, p50/p90/p95, max and mean seconds.
-- Over terminal stage runs (stage_runs.terminal) whose start is in the window;
-- percentiles are quantile_cont (linear interpolation). Stages in order of first start.
-- The three quantiles come from one list-valued quantile_cont: one sort per group, not three.
-- (queries/sql/relations/*_stats.sql computes the figures: stored by the query cache for the open
-- window.)
SELECT
    pipeline, stage, runs, q[1] AS p50_s, q[2] AS p90_s, q[3] AS p95_s, max_s, mean_s
FROM stage_duration_stats($since, $until)
WHERE pipeline_matches(pipeline, $pipelines)
ORDER BY pipeline, first_start, stage;
