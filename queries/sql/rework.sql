-- Stage retries per pipeline and stage: runs, runs retried, retry rate, extra attempts.
-- Over terminal stage runs whose start is in the window. A stage run's attempts = the
-- most executions any one of its actions has (a retry of failed actions adds one):
-- retried = runs with attempts > 1, retry_rate = retried / runs, extra_attempts =
-- sum(attempts - 1). Stages in order of first start.
-- (queries/sql/relations/*_stats.sql computes the figures.)
SELECT
    pipeline,
    stage,
    runs,
    retried,
    retried / runs AS retry_rate,
    extra_attempts
FROM stage_retry_stats($since, $until)
WHERE pipeline_matches(pipeline, $pipelines)
ORDER BY pipeline, first_start, stage;
