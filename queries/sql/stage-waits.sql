-- Wait before each stage per pipeline: queues, disabled transitions, entry conditions.
-- The wait before a stage run = its start - the end of the stage run of the same
-- execution that started last before it; before an execution's first stage run, its start
-- - the execution's start (a queue ahead of the first stage). Over stage runs whose start
-- is in the window (stage_runs.wait_s): runs, p50/p90 (quantile_cont), max and total
-- seconds. Stages in order of first start.
SELECT
    pipeline,
    stage,
    count(*) AS runs,
    quantile_cont(wait_s, 0.5) AS p50_wait_s,
    quantile_cont(wait_s, 0.9) AS p90_wait_s,
    max(wait_s) AS max_wait_s,
    sum_exact(wait_s) AS total_wait_s
FROM stage_runs
WHERE wait_s IS NOT NULL
    AND in_window(start_time, $since, $until)
    AND pipeline_matches(pipeline, $pipelines)
GROUP BY pipeline, stage
ORDER BY pipeline, min(start_time), stage;
