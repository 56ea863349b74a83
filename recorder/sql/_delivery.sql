-- Delivery definitions: deploy stages, deployments, rollbacks, restore episodes, stage
-- waits and the DORA bands. Table macros, created after every view (recorder/views.py)
-- because DuckDB binds a table macro's body when it is created. The named queries
-- (queries/sql/) select from these, so each rule has one owner.
--
-- `patterns` is the --deploy-stage list of GLOBs (empty = the default rule).

-- Deploy stages of a pipeline: with patterns, every stage whose name matches one of them;
-- without, the stage with the highest stage_index in the pipeline's latest recorded
-- definition (highest pipeline_version in pipeline_actions) that holds an action of
-- category Deploy. A pipeline with no recorded definition has no default deploy stage.
CREATE OR REPLACE MACRO deploy_stages(patterns) AS TABLE
    WITH latest AS (
        SELECT account_id, region, pipeline, max(pipeline_version) AS pipeline_version
        FROM pipeline_actions
        GROUP BY ALL
    )
    SELECT a.account_id, a.region, a.pipeline, arg_max(a.stage, a.stage_index) AS stage
    FROM pipeline_actions AS a
    JOIN latest USING (account_id, region, pipeline, pipeline_version)
    WHERE a.category = 'Deploy' AND len(CAST(patterns AS VARCHAR[])) = 0
    GROUP BY a.account_id, a.region, a.pipeline
    UNION ALL
    SELECT DISTINCT account_id, region, pipeline, stage
    FROM stage_runs
    WHERE len(CAST(patterns AS VARCHAR[])) > 0 AND glob_any(stage, patterns);

-- Deployment attempts: terminal stage runs of a deploy stage with status Succeeded or
-- Failed. deploy_time = the stage run's end_time. rollback = the execution's
-- execution_type is ROLLBACK; STANDARD or NULL (older executions carry none) is not.
CREATE OR REPLACE MACRO deployment_attempts(patterns) AS TABLE
    SELECT
        r.account_id, r.region, r.pipeline, r.stage, r.execution_id, r.status,
        r.end_time AS deploy_time,
        e.start_time AS execution_start,
        coalesce(e.execution_type = 'ROLLBACK', false) AS rollback,
        e.pipeline_version
    FROM stage_runs AS r
    JOIN deploy_stages(patterns) AS d USING (account_id, region, pipeline, stage)
    LEFT JOIN executions AS e USING (account_id, region, pipeline, execution_id)
    WHERE r.terminal AND r.status IN ('Succeeded', 'Failed');

-- Deployments: the Succeeded attempts. A deployment of a STANDARD execution is rolled
-- back when an execution of type ROLLBACK of the same pipeline starts after its
-- deploy_time and before the next STANDARD deployment of that pipeline and stage;
-- rolled_back_at = the start of the first such ROLLBACK execution (NULL: not rolled back).
-- A ROLLBACK whose target (rollback_target_execution_id) is the deployment's own
-- execution restores that deployment rather than rolling it back: when D2 fails and
-- CodePipeline rolls back to D1, D2's failure is the one failure, D1 is not rolled back.
CREATE OR REPLACE MACRO deployment_log(patterns) AS TABLE
    WITH done AS (
        SELECT
            *,
            lead(deploy_time) OVER (
                PARTITION BY account_id, region, pipeline, stage, rollback
                ORDER BY deploy_time, execution_id
            ) AS next_deploy_time
        FROM deployment_attempts(patterns)
        WHERE status = 'Succeeded'
    ),
    rollbacks AS (
        SELECT account_id, region, pipeline, start_time, rollback_target_execution_id
        FROM executions
        WHERE execution_type = 'ROLLBACK'
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
        WHERE NOT d.rollback
            AND x.rollback_target_execution_id IS DISTINCT FROM d.execution_id
        GROUP BY ALL
    )
    SELECT d.* EXCLUDE (next_deploy_time), r.rolled_back_at
    FROM done AS d
    LEFT JOIN rolled AS r USING (account_id, region, pipeline, stage, execution_id);

-- Deployment attempts of STANDARD executions, rolled_back = a Succeeded one rolled back
-- (deployment_log) by a ROLLBACK execution that started before `until` (or `now`).
CREATE OR REPLACE MACRO standard_attempts(patterns, until, now) AS TABLE
    SELECT
        a.*,
        coalesce(
            l.rolled_back_at < coalesce(CAST(until AS TIMESTAMPTZ), CAST(now AS TIMESTAMPTZ)),
            false
        ) AS rolled_back
    FROM deployment_attempts(patterns) AS a
    LEFT JOIN deployment_log(patterns) AS l
        USING (account_id, region, pipeline, stage, execution_id)
    WHERE NOT a.rollback;

-- Deployments per week: n * 7 / the window's days, the window running from `since` (or
-- `first_start`, the first recorded execution start) to `until` (or `now`).
CREATE OR REPLACE MACRO per_week(n, since, first_start, until, now) AS
    n * 7 / nullif(
        seconds_between(
            coalesce(CAST(since AS TIMESTAMPTZ), first_start),
            coalesce(CAST(until AS TIMESTAMPTZ), CAST(now AS TIMESTAMPTZ))
        ) / 86400, 0
    );

-- The earliest `created` of an execution's artifact revisions (GetPipelineExecution's
-- artifactRevisions), for executions that have one.
CREATE OR REPLACE MACRO first_created() AS TABLE
    SELECT account_id, region, pipeline, execution_id, min(created) AS first_created
    FROM execution_revisions
    WHERE kind = 'artifact' AND created IS NOT NULL
    GROUP BY ALL;

-- Lead time of each STANDARD deployment whose execution has a revision `created`:
-- lead_s = deploy_time - first_created = to_start_s (execution start - first_created)
-- + in_pipeline_s (deploy_time - execution start). NULL without a `created`.
CREATE OR REPLACE MACRO lead_times(patterns) AS TABLE
    SELECT
        l.*,
        c.first_created,
        seconds_between(c.first_created, l.deploy_time) AS lead_s,
        seconds_between(c.first_created, l.execution_start) AS to_start_s,
        CASE WHEN c.first_created IS NOT NULL
            THEN seconds_between(l.execution_start, l.deploy_time) END AS in_pipeline_s
    FROM deployment_log(patterns) AS l
    LEFT JOIN first_created() AS c USING (account_id, region, pipeline, execution_id)
    WHERE NOT l.rollback;

-- Failures and restore episodes. A failure is a Failed attempt of a STANDARD execution
-- (at its deploy_time, the stage run's end) or a rolled-back deployment (at
-- rolled_back_at). A failure opens an episode unless one is open; the next deployment
-- (STANDARD or ROLLBACK) after it and before `until` (or `now`) closes it, at that
-- deployment's deploy_time. So failures that share their next deployment share an
-- episode: one row per failure with its episode's opened_at and restored_at (NULL: still
-- open at until/now), and opens = true for the one failure that opened it.
CREATE OR REPLACE MACRO deploy_failures(patterns, until, now) AS TABLE
    WITH failures AS (
        SELECT account_id, region, pipeline, stage, execution_id, deploy_time AS failed_at
        FROM deployment_attempts(patterns)
        WHERE status = 'Failed' AND NOT rollback
        UNION ALL
        SELECT account_id, region, pipeline, stage, execution_id, rolled_back_at
        FROM deployment_log(patterns)
        WHERE rolled_back_at IS NOT NULL
    ),
    restores AS (
        SELECT account_id, region, pipeline, deploy_time
        FROM deployment_log(patterns)
        WHERE deploy_time < coalesce(CAST(until AS TIMESTAMPTZ), CAST(now AS TIMESTAMPTZ))
    ),
    -- the first restore after each failure: an ASOF join, not a subquery per failure
    closed AS (
        SELECT f.*, r.deploy_time AS restored_at
        FROM failures AS f
        ASOF LEFT JOIN restores AS r
            ON r.account_id = f.account_id AND r.region = f.region
            AND r.pipeline = f.pipeline AND r.deploy_time > f.failed_at
        WHERE f.failed_at < coalesce(CAST(until AS TIMESTAMPTZ), CAST(now AS TIMESTAMPTZ))
    )
    SELECT
        *,
        min(failed_at) OVER episode AS opened_at,
        row_number() OVER (episode ORDER BY failed_at, execution_id, stage) = 1 AS opens
    FROM closed
    WINDOW episode AS (PARTITION BY account_id, region, pipeline, restored_at);

-- Stage runs with the wait before them. wait_s = start_time - the end_time of the stage
-- run of the same execution that started last before it (`after_stage`); for the
-- execution's first stage run (after_stage NULL), start_time - the execution's start, so a
-- queue that holds an execution before its first stage counts too. It holds queues,
-- disabled transitions and entry conditions. The first stage run's wait is NULL when the
-- execution itself is not recorded (no start to measure from).
CREATE OR REPLACE MACRO stage_waits() AS TABLE
    SELECT
        r.*,
        lag(r.stage) OVER run AS after_stage,
        seconds_between(coalesce(lag(r.end_time) OVER run, e.start_time), r.start_time)
            AS wait_s
    FROM stage_runs AS r
    LEFT JOIN executions AS e USING (account_id, region, pipeline, execution_id)
    WINDOW run AS (
        PARTITION BY r.account_id, r.region, r.pipeline, r.execution_id
        ORDER BY r.start_time, r.stage
    );

-- Performance bands of the four keys, by the software delivery performance clusters of
-- the 2023 Accelerate State of DevOps Report (DORA). The report describes each cluster
-- by ranges that overlap at the low end; cprec reads them as these thresholds:
--   deployment frequency  elite: at least daily (>= 7 per week); high: at least weekly
--                         (>= 1); medium: at least monthly (>= 7/30 per week); else low
--   lead time (p50)       elite: < 1 day; high: < 1 week; medium: < 30 days; else low
--   change failure rate   elite: <= 5 %; high: <= 10 %; medium: <= 15 %; else low
--   time to restore (p50) elite: < 1 hour; high: < 1 day; medium: < 1 week; else low
-- NULL in, NULL out.
CREATE OR REPLACE MACRO frequency_band(per_week) AS
    CASE
        WHEN per_week IS NULL THEN NULL
        WHEN per_week >= 7 THEN 'elite'
        WHEN per_week >= 1 THEN 'high'
        WHEN per_week >= 7 / 30 THEN 'medium'
        ELSE 'low'
    END;

CREATE OR REPLACE MACRO lead_time_band(seconds) AS
    CASE
        WHEN seconds IS NULL THEN NULL
        WHEN seconds < 86400 THEN 'elite'
        WHEN seconds < 7 * 86400 THEN 'high'
        WHEN seconds < 30 * 86400 THEN 'medium'
        ELSE 'low'
    END;

CREATE OR REPLACE MACRO failure_rate_band(rate) AS
    CASE
        WHEN rate IS NULL THEN NULL
        WHEN rate <= 0.05 THEN 'elite'
        WHEN rate <= 0.10 THEN 'high'
        WHEN rate <= 0.15 THEN 'medium'
        ELSE 'low'
    END;

CREATE OR REPLACE MACRO restore_band(seconds) AS
    CASE
        WHEN seconds IS NULL THEN NULL
        WHEN seconds < 3600 THEN 'elite'
        WHEN seconds < 86400 THEN 'high'
        WHEN seconds < 7 * 86400 THEN 'medium'
        ELSE 'low'
    END;
