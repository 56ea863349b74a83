-- Change failure rate per pipeline: failed and rolled-back deployments over attempts.
-- Over deployment attempts (terminal Succeeded or Failed stage runs of a deploy stage,
-- see `deployments`) of STANDARD executions whose time is in the window:
--   attempts     the attempts
--   failed       the Failed ones
--   rolled_back  Succeeded ones rolled back: an execution of type ROLLBACK of the same
--                pipeline, not targeting the deployment's own execution, started after
--                the deployment, before the next STANDARD deployment of that pipeline and
--                stage and before --until (or now)
--   rollbacks    executions of type ROLLBACK that started in the window
--   change_failure_rate = (failed + rolled_back) / attempts (_macros.sql)
WITH attempts AS (
    SELECT pipeline, status, rolled_back
    FROM standard_attempts($deploy_stages, $until, $now)
    WHERE in_window(deploy_time, $since, $until)
        AND pipeline_matches(pipeline, $pipelines)
),
per_pipeline AS (
    SELECT
        pipeline,
        count(*) AS attempts,
        count(*) FILTER (WHERE status = 'Failed') AS failed,
        count(*) FILTER (WHERE rolled_back) AS rolled_back
    FROM attempts
    GROUP BY pipeline
),
rollbacks AS (
    SELECT pipeline, count(*) AS rollbacks
    FROM executions
    WHERE execution_type = 'ROLLBACK'
        AND in_window(start_time, $since, $until)
        AND pipeline_matches(pipeline, $pipelines)
    GROUP BY pipeline
)
SELECT
    pipeline,
    coalesce(p.attempts, 0) AS attempts,
    coalesce(p.failed, 0) AS failed,
    coalesce(p.rolled_back, 0) AS rolled_back,
    coalesce(r.rollbacks, 0) AS rollbacks,
    change_failure_rate(p.failed, p.rolled_back, p.attempts) AS change_failure_rate
FROM per_pipeline AS p
FULL JOIN rollbacks AS r USING (pipeline)
ORDER BY pipeline;
