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
-- (queries/sql/relations/*_stats.sql computes the figures but per_week.)
SELECT
    pipeline,
    stage,
    deployments,
    rollback_deployments,
    deploy_days,
    per_week(deployments, $since, first_start, $until, $now) AS per_week,
    median_interval_s,
    last_deploy
FROM deploy_stats($deploy_stages, $since, $until)
WHERE pipeline_matches(pipeline, $pipelines)
ORDER BY pipeline, first_attempt, stage;
