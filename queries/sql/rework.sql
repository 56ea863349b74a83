-- Stage retries per pipeline and stage: runs, runs retried, retry rate, extra attempts.
-- Over terminal stage runs whose start is in the window. A stage run's attempts = the
-- most executions any one of its actions has (a retry of failed actions adds one):
-- retried = runs with attempts > 1, retry_rate = retried / runs, extra_attempts =
-- sum(attempts - 1). Stages in order of first start.
SELECT
    pipeline,
    stage,
    count(*) AS runs,
    count(*) FILTER (WHERE attempts > 1) AS retried,
    count(*) FILTER (WHERE attempts > 1) / count(*) AS retry_rate,
    CAST(sum(attempts - 1) AS BIGINT) AS extra_attempts
FROM stage_runs
WHERE terminal
    AND in_window(start_time, $since, $until)
    AND pipeline_matches(pipeline, $pipelines)
GROUP BY pipeline, stage
ORDER BY pipeline, min(start_time), stage;
