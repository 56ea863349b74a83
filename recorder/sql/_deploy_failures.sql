-- The failures of the deployment rule, each with the first deployment after it. Created
-- after `deploy_attempts(patterns)` (recorder/views.py); `sql/_delivery.sql` builds the
-- restore episodes on `failure_restores(patterns)`, which reads `compute_failure_restores(patterns)`
-- below, or, over the query cache and for the default rule, the same rows the cache keeps
-- (recomputed for a pipeline when its attempts are).
--
-- A failure is a Failed attempt of a STANDARD execution (at its deploy_time, the stage
-- run's end) or a rolled-back deployment (at rolled_back_at). next_deploy_time = the
-- deploy_time of the first deployment (a Succeeded attempt, STANDARD or ROLLBACK) of the
-- same pipeline after it; NULL while there is none.
CREATE OR REPLACE MACRO compute_failure_restores(patterns) AS TABLE
    WITH failures AS (
        SELECT account_id, region, pipeline, stage, execution_id, deploy_time AS failed_at
        FROM deploy_attempts(patterns)
        WHERE status = 'Failed' AND NOT rollback
        UNION ALL
        SELECT account_id, region, pipeline, stage, execution_id, rolled_back_at
        FROM deploy_attempts(patterns)
        WHERE status = 'Succeeded' AND rolled_back_at IS NOT NULL
    ),
    deployments AS (
        SELECT account_id, region, pipeline, deploy_time
        FROM deploy_attempts(patterns)
        WHERE status = 'Succeeded'
    )
    -- the first deployment after each failure: an ASOF join, not a subquery per failure
    SELECT f.*, d.deploy_time AS next_deploy_time
    FROM failures AS f
    ASOF LEFT JOIN deployments AS d
        ON d.account_id = f.account_id AND d.region = f.region
        AND d.pipeline = f.pipeline AND d.deploy_time > f.failed_at;
