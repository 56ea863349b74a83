-- `stage_duration_stats(since, until)` (grain: name).
-- Terminal stage runs (stage_runs.terminal) per pipeline and stage: runs,
-- p50/p90/p95 (quantile_cont, one sort per group), max and mean seconds, first start.
SELECT
    pipeline,
    stage,
    count(*) AS runs,
    quantile_cont(duration_s, [0.5, 0.9, 0.95]) AS q,
    max(duration_s) AS max_s,
    mean_exact(duration_s) AS mean_s,
    min(start_time) AS first_start
FROM {stage_runs}
WHERE terminal AND in_window(start_time, since, until)
GROUP BY pipeline, stage
