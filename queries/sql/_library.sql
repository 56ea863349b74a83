-- The library: delivery definitions (deployments, rollbacks, restore episodes, stage waits)
-- and the DORA bands, as macros over the relations (queries/relations.py), created after
-- them because DuckDB binds a table macro's body when it is created. The named queries
-- select from these, so each rule has one owner.
--
-- `patterns` is the --deploy-stage list of GLOBs (empty = the default rule).

-- Deployment attempts (relations/deploy_attempts.sql): terminal Succeeded or Failed
-- stage runs of a deploy stage, at deploy_time = the stage run's end.
CREATE OR REPLACE MACRO deployment_attempts(patterns) AS TABLE
    SELECT * EXCLUDE (rolled_back_at, first_created)
    FROM deploy_attempts(patterns);

-- Deployments: the Succeeded attempts, with rolled_back_at (sql/_deploy_rule.sql).
CREATE OR REPLACE MACRO deployment_log(patterns) AS TABLE
    SELECT * EXCLUDE (first_created)
    FROM deploy_attempts(patterns)
    WHERE status = 'Succeeded';

-- Deployment attempts of STANDARD executions, rolled_back = a Succeeded one rolled back
-- (rolled_back_at) by a ROLLBACK execution that started before `until` (or `now`).
CREATE OR REPLACE MACRO standard_attempts(patterns, until, now) AS TABLE
    SELECT
        * EXCLUDE (rolled_back_at, first_created),
        coalesce(
            rolled_back_at < coalesce(CAST(until AS TIMESTAMPTZ), CAST(now AS TIMESTAMPTZ)),
            false
        ) AS rolled_back
    FROM deploy_attempts(patterns)
    WHERE NOT "rollback";

-- Deployments per week: n * 7 / the window's days, the window running from `since` (or
-- `first_start`, the first recorded execution start) to `until` (or `now`).
CREATE OR REPLACE MACRO per_week(n, since, first_start, until, now) AS
    n * 7 / nullif(
        seconds_between(
            coalesce(CAST(since AS TIMESTAMPTZ), first_start),
            coalesce(CAST(until AS TIMESTAMPTZ), CAST(now AS TIMESTAMPTZ))
        ) / 86400, 0
    );

-- Lead time of each STANDARD deployment whose execution has a revision `created`:
-- lead_s = deploy_time - first_created = to_start_s (execution start - first_created)
-- + in_pipeline_s (deploy_time - execution start). NULL without a `created`.
CREATE OR REPLACE MACRO lead_times(patterns) AS TABLE
    SELECT
        *,
        seconds_between(first_created, deploy_time) AS lead_s,
        seconds_between(first_created, execution_start) AS to_start_s,
        CASE WHEN first_created IS NOT NULL
            THEN seconds_between(execution_start, deploy_time) END AS in_pipeline_s
    FROM deploy_attempts(patterns)
    WHERE status = 'Succeeded' AND NOT "rollback";

-- Failures and restore episodes (the failures and the deployment after each:
-- relations/failure_restores.sql). A failure is a Failed attempt of a STANDARD execution
-- (at its deploy_time, the stage run's end) or a rolled-back deployment (at
-- rolled_back_at). A failure opens an episode unless one is open; the next deployment
-- (STANDARD or ROLLBACK) after it and before `until` (or `now`) closes it, at that
-- deployment's deploy_time. So failures that share their next deployment share an
-- episode: one row per failure with its episode's opened_at and restored_at (NULL: still
-- open at until/now), and opens = true for the one failure that opened it.
CREATE OR REPLACE MACRO deploy_failures(patterns, until, now) AS TABLE
    WITH closed AS (
        -- The first deployment after a failure (next_deploy_time) restores it when it
        -- comes before `until` (or `now`); a later one never comes before it.
        SELECT
            account_id, region, pipeline, stage, execution_id, failed_at,
            CASE
                WHEN next_deploy_time
                    < coalesce(CAST(until AS TIMESTAMPTZ), CAST(now AS TIMESTAMPTZ))
                THEN next_deploy_time
            END AS restored_at
        FROM failure_restores(patterns)
        WHERE failed_at < coalesce(CAST(until AS TIMESTAMPTZ), CAST(now AS TIMESTAMPTZ))
    )
    SELECT
        *,
        min(failed_at) OVER episode AS opened_at,
        row_number() OVER (episode ORDER BY failed_at, execution_id, stage) = 1 AS opens
    FROM closed
    WINDOW episode AS (PARTITION BY account_id, region, pipeline, restored_at);

-- Stage runs with the wait before them: `stage_runs` itself, whose after_stage and wait_s
-- (relations/stage_runs.sql) say how long a stage run waited after the one before it. Kept
-- for SQL written against it.
CREATE OR REPLACE MACRO stage_waits() AS TABLE
    SELECT * FROM stage_runs;

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

CREATE OR REPLACE MACRO change_failure_rate_band(rate) AS
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
