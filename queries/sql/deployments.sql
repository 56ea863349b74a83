-- Deployments per pipeline and deploy stage: count, days, per week, interval, last one.
-- A deployment is a Succeeded terminal stage run of a deploy stage (--deploy-stage GLOBs;
-- by default each pipeline's last stage holding a Deploy action); its time is the stage
-- run's end, and the window applies to that time. Rows: deploy stages with a Succeeded or
-- Failed attempt in the window.
--   deployments          deployments of STANDARD executions (execution_type STANDARD/NULL)
--   rollback_deployments deployments of ROLLBACK executions, counted apart
--   deploy_days          distinct UTC dates with a deployment
--   per_week             deployments * 7 / window days; the window runs from --since (or
--                        the pipeline's first recorded execution start) to --until (or now)
--   median_interval_s    median of the seconds between consecutive deployments
--   last_deploy          the latest deployment's time
WITH attempts AS (
    SELECT *
    FROM deployment_attempts($deploy_stages)
    WHERE in_window(deploy_time, $since, $until)
        AND pipeline_matches(pipeline, $pipelines)
),
standard AS (
    SELECT
        *,
        seconds_between(
            lag(deploy_time) OVER (
                PARTITION BY account_id, region, pipeline, stage
                ORDER BY deploy_time, execution_id
            ),
            deploy_time
        ) AS interval_s
    FROM attempts
    WHERE status = 'Succeeded' AND NOT rollback
),
first_start AS (
    SELECT pipeline, min(start_time) AS first_start
    FROM executions
    GROUP BY pipeline
),
per_stage AS (
    SELECT
        a.pipeline, a.stage,
        count(*) FILTER (WHERE a.status = 'Succeeded' AND NOT a.rollback) AS deployments,
        count(*) FILTER (WHERE a.status = 'Succeeded' AND a.rollback) AS rollback_deployments,
        count(DISTINCT CAST(a.deploy_time AT TIME ZONE 'UTC' AS DATE))
            FILTER (WHERE a.status = 'Succeeded' AND NOT a.rollback) AS deploy_days,
        max(a.deploy_time) FILTER (WHERE a.status = 'Succeeded' AND NOT a.rollback)
            AS last_deploy,
        min(a.deploy_time) AS first_attempt
    FROM attempts AS a
    GROUP BY ALL
),
intervals AS (
    SELECT pipeline, stage, quantile_cont(interval_s, 0.5) AS median_s
    FROM standard
    GROUP BY ALL
)
SELECT
    p.pipeline,
    p.stage,
    p.deployments,
    p.rollback_deployments,
    p.deploy_days,
    per_week(p.deployments, $since, f.first_start, $until, $now) AS per_week,
    i.median_s AS median_interval_s,
    p.last_deploy
FROM per_stage AS p
LEFT JOIN intervals AS i USING (pipeline, stage)
LEFT JOIN first_start AS f USING (pipeline)
ORDER BY p.pipeline, p.first_attempt, p.stage;
