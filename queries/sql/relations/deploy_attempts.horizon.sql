-- The horizon of `deploy_attempts` in a cache refresh (recorder/derive.py): per pipeline,
-- the earliest deploy_time from which its attempts may have changed (`since`).
--
-- An attempt depends on its own execution (its stage run, its execution row, its
-- execution_times row), on the next STANDARD deployment of its stage (next_deploy_time)
-- and on the ROLLBACK executions that start between its deploy_time and that one. Let T
-- be the earliest time a touched execution ({keys}) brings: its start, the deploy_time of
-- its attempts as stored, the end of its stage runs as this refresh wrote them. Every
-- attempt that changed is then at or after T, every ROLLBACK that appeared or changed
-- starts at or after T, and an attempt before T is affected only when its window reaches
-- T: the last Succeeded STANDARD deployment before T of each stage (no deployment of that
-- stage lies between it and T). So since = the earliest of T and those last deployments.
--
-- Unbounded (recomputed whole): a pipeline with a touched execution that has no
-- execution row (no start to place it: a deleted partition) and a pipeline in {whole}
-- (its definitions changed, and with them which stages deploy).
WITH stored AS (
    SELECT account_id, region, pipeline, execution_id, min(deploy_time) AS t
    FROM {stored}
    SEMI JOIN {keys} USING (account_id, region, pipeline, execution_id)
    GROUP BY ALL
),
now AS (
    SELECT account_id, region, pipeline, execution_id, min(end_time) AS t
    FROM {new_stage_runs}
    GROUP BY ALL
),
touched AS (
    SELECT
        k.account_id, k.region, k.pipeline,
        min(least(e.start_time, s.t, n.t)) AS t,
        bool_and(e.start_time IS NOT NULL) AS placed
    FROM {keys} AS k
    LEFT JOIN {executions} AS e USING (account_id, region, pipeline, execution_id)
    LEFT JOIN stored AS s USING (account_id, region, pipeline, execution_id)
    LEFT JOIN now AS n USING (account_id, region, pipeline, execution_id)
    GROUP BY ALL
),
bounded AS (
    SELECT account_id, region, pipeline, t
    FROM touched
    ANTI JOIN {whole} USING (account_id, region, pipeline)
    WHERE placed
),
last_before AS (
    SELECT a.account_id, a.region, a.pipeline, a.stage, max(a.deploy_time) AS deploy_time
    FROM {stored} AS a
    JOIN bounded AS b USING (account_id, region, pipeline)
    WHERE a.status = 'Succeeded' AND NOT a."rollback" AND a.deploy_time < b.t
    GROUP BY ALL
)
SELECT b.account_id, b.region, b.pipeline, least(b.t, min(l.deploy_time)) AS since
FROM bounded AS b
LEFT JOIN last_before AS l USING (account_id, region, pipeline)
GROUP BY b.account_id, b.region, b.pipeline, b.t
