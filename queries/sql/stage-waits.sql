-- Wait before each stage per pipeline: queues, disabled transitions, entry conditions.
-- The wait before a stage run = its start - the end of the stage run of the same
-- execution that started last before it; before an execution's first stage run, its start
-- - the execution's start (a queue ahead of the first stage). Over stage runs whose start
-- is in the window (stage_runs.wait_s): runs, p50/p90 (quantile_cont), max and total
-- seconds. Stages in order of first start.
-- (queries/sql/relations/*_stats.sql computes the figures.)
SELECT
    pipeline,
    stage,
    runs,
    q[1] AS p50_wait_s,
    q[2] AS p90_wait_s,
    max_wait_s,
    total_wait_s
FROM stage_wait_stats($since, $until)
WHERE pipeline_matches(pipeline, $pipelines)
ORDER BY pipeline, first_start, stage;
