-- `deploy_stats(patterns, since, until)` (grain: name).
-- Deployment attempts (deploy_attempts) whose time is in the window, per pipeline and
-- deploy stage: deployments (Succeeded, STANDARD), rollback_deployments (Succeeded,
-- ROLLBACK), deploy_days (distinct UTC dates of deployments), last_deploy, first_attempt,
-- median_interval_s (median seconds between consecutive deployments), and first_start,
-- the pipeline's first recorded execution start (all time).
WITH attempts AS (
    SELECT *
    FROM {deploy_attempts}
    WHERE in_window(deploy_time, since, until)
),
intervals AS (
    SELECT
        pipeline, stage,
        quantile_cont(interval_s, 0.5) AS median_interval_s
    FROM (
        SELECT
            pipeline, stage,
            seconds_between(
                lag(deploy_time) OVER (
                    PARTITION BY account_id, region, pipeline, stage
                    ORDER BY deploy_time, execution_id
                ),
                deploy_time
            ) AS interval_s
        FROM attempts
        WHERE status = 'Succeeded' AND NOT "rollback"
    )
    GROUP BY ALL
),
per_stage AS (
    SELECT
        pipeline, stage,
        count(*) FILTER (WHERE status = 'Succeeded' AND NOT "rollback") AS deployments,
        count(*) FILTER (WHERE status = 'Succeeded' AND "rollback") AS rollback_deployments,
        count(DISTINCT CAST(deploy_time AT TIME ZONE 'UTC' AS DATE))
            FILTER (WHERE status = 'Succeeded' AND NOT "rollback") AS deploy_days,
        max(deploy_time) FILTER (WHERE status = 'Succeeded' AND NOT "rollback")
            AS last_deploy,
        min(deploy_time) AS first_attempt
    FROM attempts
    GROUP BY ALL
),
first_start AS (
    SELECT pipeline, min(start_time) AS first_start
    FROM {executions}
    SEMI JOIN per_stage USING (pipeline)
    GROUP BY pipeline
)
SELECT p.*, i.median_interval_s, f.first_start
FROM per_stage AS p
LEFT JOIN intervals AS i USING (pipeline, stage)
LEFT JOIN first_start AS f USING (pipeline)
