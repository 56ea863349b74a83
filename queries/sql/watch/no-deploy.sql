-- no-deploy: no successful deployment for at least `days` on a pipeline that had some.
-- Deployments are Succeeded attempts of STANDARD executions in deploy_attempts (the deploy
-- stages: the rules file's `deploy_stages` GLOBs, or each pipeline's default rule, as
-- --deploy-stage); since = the last one's deploy_time, per pipeline and deploy stage. A
-- pipeline that never deployed is not evaluated. One alert per pipeline and stage.
WITH last AS (
    SELECT account_id, region, pipeline, stage,
        max(deploy_time) AS since,
        arg_max(execution_id, deploy_time) AS execution_id
    FROM deploy_attempts($deploy_stages)
    WHERE status = 'Succeeded' AND NOT "rollback"
    GROUP BY ALL
)
SELECT
    'no-deploy' AS rule,
    l.account_id, l.region, l.pipeline, l.stage,
    CAST(NULL AS VARCHAR) AS action,
    l.execution_id,
    l.stage AS subject,
    l.since,
    seconds_between(l.since, w.clock) AS age_s,
    seconds_between(l.since, w.clock) AS value,
    w.no_deploy_days * 86400 AS threshold,
    'last deployment ' || l.execution_id AS detail,
    w.no_deploy_repeat_hours * 3600 AS repeat_s,
    w.clock
FROM last AS l
JOIN watch_pipelines AS w USING (account_id, region, pipeline)
WHERE w.no_deploy_enabled AND seconds_between(l.since, w.clock) >= w.no_deploy_days * 86400
