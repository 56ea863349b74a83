-- `stage_retry_stats(since, until)` (grain: name).
-- Terminal stage runs per pipeline and stage: runs, retried (attempts > 1), extra attempts
-- (sum of attempts - 1), first start.
SELECT
    pipeline,
    stage,
    count(*) AS runs,
    count(*) FILTER (WHERE attempts > 1) AS retried,
    CAST(sum(attempts - 1) AS BIGINT) AS extra_attempts,
    min(start_time) AS first_start
FROM {stage_runs}
WHERE terminal AND in_window(start_time, since, until)
GROUP BY pipeline, stage
