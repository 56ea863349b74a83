-- The four DORA keys per pipeline and for all of them, each with its performance band.
-- One row per pipeline with a deployment attempt in the window, then pipeline '(all)' for
-- those pipelines as a whole (no CodePipeline name holds parentheses). The keys, as the
-- named queries define them (one definition each, _library.sql and _macros.sql):
--   deployments, per_week   `deployments`: STANDARD deployments of every deploy stage;
--                           window from --since (or the first recorded execution start of
--                           the pipeline, of the selection for '(all)') to --until or now
--   p50_lead_time_s         `lead-time` p50_lead_time_s
--   change_failure_rate     `change-failure-rate`
--   p50_restore_s           `time-to-restore` p50_restore_s
-- Bands: the software delivery performance clusters of the 2023 Accelerate State of
-- DevOps Report (DORA), read as these thresholds:
--   per_week            elite >= 7 (daily); high >= 1 (weekly); medium >= 7/30 (monthly)
--   p50_lead_time_s     elite < 1 day; high < 1 week; medium < 30 days
--   change_failure_rate elite <= 0.05; high <= 0.10; medium <= 0.15
--   p50_restore_s       elite < 1 hour; high < 1 day; medium < 1 week
-- anything else is low; a key without data has no band.
WITH attempts AS (
    SELECT *
    FROM standard_attempts($deploy_stages, $until, $now)
    WHERE in_window(deploy_time, $since, $until)
        AND pipeline_matches(pipeline, $pipelines)
),
selected AS (
    SELECT DISTINCT pipeline FROM attempts
),
frequency AS (
    SELECT
        coalesce(e.pipeline, '(all)') AS pipeline,
        min(e.start_time) AS first_start
    FROM executions AS e
    SEMI JOIN selected AS s USING (pipeline)
    GROUP BY GROUPING SETS ((e.pipeline), ())
),
stability AS (
    SELECT
        coalesce(pipeline, '(all)') AS pipeline,
        count(*) FILTER (WHERE status = 'Succeeded') AS deployments,
        change_failure_rate(
            count(*) FILTER (WHERE status = 'Failed'), count(*) FILTER (WHERE rolled_back),
            count(*)
        ) AS change_failure_rate
    FROM attempts
    GROUP BY GROUPING SETS ((pipeline), ())
    HAVING count(*) > 0
),
lead AS (
    SELECT coalesce(pipeline, '(all)') AS pipeline, quantile_cont(lead_s, 0.5) AS p50_s
    FROM lead_times($deploy_stages)
    WHERE in_window(deploy_time, $since, $until)
        AND pipeline_matches(pipeline, $pipelines)
    GROUP BY GROUPING SETS ((pipeline), ())
),
restore AS (
    SELECT
        coalesce(pipeline, '(all)') AS pipeline,
        quantile_cont(seconds_between(opened_at, restored_at), 0.5) FILTER (WHERE opens)
            AS p50_s
    FROM deploy_failures($deploy_stages, $until, $now)
    SEMI JOIN selected USING (pipeline)
    WHERE in_window(failed_at, $since, $until)
    GROUP BY GROUPING SETS ((pipeline), ())
),
keys AS (
    SELECT
        s.pipeline,
        s.deployments,
        per_week(s.deployments, $since, f.first_start, $until, $now) AS per_week,
        l.p50_s AS p50_lead_time_s,
        s.change_failure_rate,
        r.p50_s AS p50_restore_s
    FROM stability AS s
    LEFT JOIN frequency AS f USING (pipeline)
    LEFT JOIN lead AS l USING (pipeline)
    LEFT JOIN restore AS r USING (pipeline)
)
SELECT
    pipeline,
    deployments,
    per_week,
    frequency_band(per_week) AS frequency_band,
    p50_lead_time_s,
    lead_time_band(p50_lead_time_s) AS lead_time_band,
    change_failure_rate,
    change_failure_rate_band(change_failure_rate) AS change_failure_rate_band,
    p50_restore_s,
    restore_band(p50_restore_s) AS restore_band
FROM keys
ORDER BY pipeline = '(all)', pipeline;
