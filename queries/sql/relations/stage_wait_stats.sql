-- `stage_wait_stats(since, until)` (grain: name).
-- Stage runs with a wait (stage_runs.wait_s) per pipeline and stage: count, p50/p90
-- (quantile_cont), max and total seconds, first start.
SELECT
    pipeline,
    stage,
    count(*) AS runs,
    quantile_cont(wait_s, [0.5, 0.9]) AS q,
    max(wait_s) AS max_wait_s,
    sum_exact(wait_s) AS total_wait_s,
    min(start_time) AS first_start
FROM {stage_runs}
WHERE wait_s IS NOT NULL AND in_window(start_time, since, until)
GROUP BY pipeline, stage
