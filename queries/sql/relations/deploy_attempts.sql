-- `deploy_attempts(patterns)` (grain: pipeline). Deployment attempts: terminal stage runs of a deploy stage with status Succeeded or
-- Failed. deploy_time = the stage run's end_time. rollback = the execution's
-- execution_type is ROLLBACK; STANDARD or NULL (older executions carry none) is not.
--
-- rolled_back_at, for a Succeeded attempt of a STANDARD execution: a deployment is rolled
-- back when an execution of type ROLLBACK of the same pipeline starts after its
-- deploy_time and before the next STANDARD deployment of that pipeline and stage;
-- rolled_back_at = the start of the first such ROLLBACK execution (NULL: not rolled back,
-- and for every other attempt). A ROLLBACK whose target (rollback_target_execution_id) is
-- the deployment's own execution restores that deployment rather than rolling it back:
-- when D2 fails and CodePipeline rolls back to D1, D2's failure is the one failure, D1 is
-- not rolled back.
--
-- first_created = the execution's earliest artifact revision `created` (execution_times).
--
-- {horizon}: the pipelines for which only the attempts with deploy_time >= since are
-- wanted (a cache refresh; deploy_attempts.horizon.sql says why the others cannot have
-- changed). What those attempts read is at or after since too: the next deployment
-- after each, and the ROLLBACK executions that start after it.
WITH attempts AS (
    SELECT
        r.account_id, r.region, r.pipeline, r.stage, r.execution_id, r.status,
        r.end_time AS deploy_time,
        e.start_time AS execution_start,
        coalesce(e.execution_type = 'ROLLBACK', false) AS "rollback",
        e.pipeline_version
    FROM (
        SELECT r.*
        FROM {stage_runs} AS r
        LEFT JOIN {horizon} AS h USING (account_id, region, pipeline)
        WHERE r.terminal AND r.status IN ('Succeeded', 'Failed')
            AND coalesce(r.end_time >= h.since, true)
    ) AS r
    JOIN {deploy_stages} AS d USING (account_id, region, pipeline, stage)
    LEFT JOIN {executions} AS e USING (account_id, region, pipeline, execution_id)
),
done AS (
    SELECT
        *,
        lead(deploy_time) OVER (
            PARTITION BY account_id, region, pipeline, stage, "rollback"
            ORDER BY deploy_time, execution_id
        ) AS next_deploy_time
    FROM attempts
    WHERE status = 'Succeeded'
),
rollbacks AS (
    SELECT account_id, region, pipeline, start_time, rollback_target_execution_id
    FROM {executions}
    LEFT JOIN {horizon} AS h USING (account_id, region, pipeline)
    WHERE execution_type = 'ROLLBACK' AND coalesce(start_time > h.since, true)
),
-- a range join (DuckDB's IEJoin), not a subquery per deployment
rolled AS (
    SELECT d.account_id, d.region, d.pipeline, d.stage, d.execution_id,
        min(x.start_time) AS rolled_back_at
    FROM done AS d
    JOIN rollbacks AS x
        ON x.account_id = d.account_id AND x.region = d.region
        AND x.pipeline = d.pipeline
        AND x.start_time > d.deploy_time
        AND x.start_time < coalesce(d.next_deploy_time, 'infinity'::TIMESTAMPTZ)
    WHERE NOT d."rollback"
        AND x.rollback_target_execution_id IS DISTINCT FROM d.execution_id
    GROUP BY ALL
)
SELECT a.*, r.rolled_back_at, c.first_created
FROM attempts AS a
LEFT JOIN rolled AS r USING (account_id, region, pipeline, stage, execution_id)
LEFT JOIN {execution_times} AS c USING (account_id, region, pipeline, execution_id)
