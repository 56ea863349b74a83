-- `failure_restores(patterns)` (grain: pipeline): the failures of the deployment rule,
-- each with the first deployment after it.
-- A failure is a Failed attempt of a STANDARD execution (at its deploy_time, the stage
-- run's end) or a rolled-back deployment (at rolled_back_at). next_deploy_time = the
-- deploy_time of the first deployment (a Succeeded attempt, STANDARD or ROLLBACK) of the
-- same pipeline after it; NULL while there is none.
WITH failures AS (
    SELECT account_id, region, pipeline, stage, execution_id, deploy_time AS failed_at
    FROM {deploy_attempts}
    WHERE status = 'Failed' AND NOT "rollback"
    UNION ALL
    SELECT account_id, region, pipeline, stage, execution_id, rolled_back_at
    FROM {deploy_attempts}
    WHERE status = 'Succeeded' AND rolled_back_at IS NOT NULL
),
deployments AS (
    SELECT account_id, region, pipeline, deploy_time
    FROM {deploy_attempts}
    WHERE status = 'Succeeded'
)
-- the first deployment after each failure: an ASOF join, not a subquery per failure
SELECT f.*, d.deploy_time AS next_deploy_time
FROM failures AS f
ASOF LEFT JOIN deployments AS d
    ON d.account_id = f.account_id AND d.region = f.region
    AND d.pipeline = f.pipeline AND d.deploy_time > f.failed_at
