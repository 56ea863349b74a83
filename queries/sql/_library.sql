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

-- What CodePipeline charges (`cost`). Every rule and price is here, and each rule says
-- where AWS states it. Source: https://aws.amazon.com/codepipeline/pricing/ ("Pipeline
-- types", "AWS Free Tier"; read 2026-12-07). The prices are `aws_prices()`; `cprec query
-- cost --prices FILE` and `--price-per-minute` replace them (queries/cost.py).
--
-- V2 pipelines: "$0.002 per action execution minute". The minutes of an action
--   execution run "from the time an action in your pipeline starts executing until that
--   action reaches a completion state, rounded up to the nearest minute": here from its
--   start_time to its last_update_time once it ended (action_attempts), each execution
--   rounded up on its own, exact to the microsecond (60 s is 1 minute, 60.000001 s 2).
--   An action still running is billed when it ends. "You are charged for all action
--   types except for manual approval and custom action types": an Approval action, or
--   an action of owner Custom, is not billed. (Condition rules are not actions.)
-- V2 free tier: "100 free action execution minutes per month", "shared between all V2
--   pipelines in the account", "reset at the beginning of each calendar month". Months
--   are UTC calendar months, and an action execution's minutes fall in the month it
--   ended. The free minutes go to the month's billed minutes in the order they ended
--   (then by action execution id): the first 100 are free, whichever pipeline used them.
-- V1 pipelines: "$1.00 per active pipeline (a pipeline that has existed for more than
--   30 days and has at least one code change that runs through it during the month)
--   per month"; "not prorated for partial months"; "free for the first 30 days after
--   creation". Here a V1 pipeline is active in a month when an execution (other than a
--   Cancelled one, which never ran) started in the month more than 30 days after the
--   pipeline's `created`. Its monthly charge falls in no stage or action.
-- V1 free tier: "One free active V1 pipeline per month" per account: here the one whose
--   first such execution of the month started first (then by region and name).
-- The pipeline type: "Pipelines are automatically designated as V1 pipelines, even if the
--   pipeline type is not specified", so a recorded definition without a type is V1. An
--   execution is billed by the type of the pipeline version it ran; when that version
--   was not recorded (history from before the first collection), by the last recorded
--   version before it, else the first after it. A pipeline with no recorded definition
--   has no type: its cost is NULL, never a guess. A pipeline whose `created` was not
--   recorded is taken as older than 30 days.
CREATE OR REPLACE MACRO aws_prices() AS {
    'currency': 'USD',
    'action_minute': CAST(0.002 AS DECIMAL(18, 8)),
    'free_action_minutes': CAST(100 AS BIGINT),
    'active_pipeline_month': CAST(1.00 AS DECIMAL(18, 8)),
    'free_active_pipelines': CAST(1 AS BIGINT),
    'free_days': CAST(30 AS BIGINT),
    'regions': CAST([] AS STRUCT(
        region VARCHAR,
        action_minute DECIMAL(18, 8),
        active_pipeline_month DECIMAL(18, 8)
    )[])
};

-- The pipeline type (V1 | V2) of each recorded pipeline version, and per pipeline a row of
-- version -2^63 holding its first recorded version's type: an ASOF join on
-- `version >= pipeline_version` then finds the type the rules above give any version.
CREATE OR REPLACE MACRO pipeline_types() AS TABLE
    WITH types AS (
        SELECT account_id, region, pipeline, pipeline_version,
            coalesce(pipeline_type, 'V1') AS pipeline_type
        FROM pipelines
    )
    SELECT * FROM types
    UNION ALL
    SELECT account_id, region, pipeline, -9223372036854775808 AS pipeline_version,
        arg_min(pipeline_type, pipeline_version) AS pipeline_type
    FROM types
    GROUP BY ALL;

-- A region's price of `kind` ('action_minute' or 'active_pipeline_month'): its row of
-- prices['regions'], else the default.
CREATE OR REPLACE MACRO region_price(prices, kind, r) AS
    coalesce(
        list_filter(prices['regions'], lambda p: p['region'] = r)[1][kind],
        prices[kind]
    );

-- One row per ended action execution of every type: its minutes, its billable minutes
-- (0 when not billed per minute), the free minutes it used and its cost (V1: 0, billed
-- per month in pipeline_month_costs). `prices`: aws_prices() or one of the same shape.
CREATE OR REPLACE MACRO action_costs(prices) AS TABLE
    WITH billed AS (
        SELECT
            a.*,
            t.pipeline_type,
            CAST(date_trunc('month', a.end_time AT TIME ZONE 'UTC') AS DATE) AS month,
            (epoch_us(a.end_time) - epoch_us(a.start_time)) / 60e6 AS minutes,
            t.pipeline_type = 'V2'
                AND coalesce(a.category, '') <> 'Approval'
                AND coalesce(a.owner, '') <> 'Custom' AS per_minute,
            -- rounded up, in whole microseconds: no floating-point edge at the minute (an
            -- end recorded before its start, a clock's error, is 0 minutes, never less)
            CASE WHEN per_minute THEN greatest(
                    0, (epoch_us(a.end_time) - epoch_us(a.start_time) + 59999999) // 60000000
                )
                WHEN NOT per_minute THEN 0
            END AS billable_minutes
        FROM action_attempts AS a
        ASOF LEFT JOIN pipeline_types() AS t
            ON a.account_id = t.account_id AND a.region = t.region AND a.pipeline = t.pipeline
            AND coalesce(a.pipeline_version, -9223372036854775808) >= t.pipeline_version
    ),
    -- the free minutes go to a month's first billed minutes: each billed row holds at
    -- least one, so they all go to its first `free_action_minutes` rows, found per
    -- account and month with a top-N aggregate (a heap per group) instead of sorting
    -- every row of the month (24.5 M rows at 500 pipelines x 365 days)
    firsts AS (
        SELECT account_id, month, arg_min(
            {'end_time': end_time, 'id': action_execution_id, 'region': region,
             'pipeline': pipeline, 'minutes': billable_minutes},
            {'end_time': end_time, 'id': action_execution_id},
            greatest(prices['free_action_minutes'], 1)
        ) AS rows
        FROM billed
        WHERE billable_minutes > 0
        GROUP BY account_id, month
    ),
    shared AS (
        SELECT
            account_id, r.region, r.pipeline, r.id AS action_execution_id,
            coalesce(sum(r.minutes) OVER (
                PARTITION BY account_id, month
                ORDER BY r.end_time, r.id
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
            ), 0) AS used_before
        FROM (SELECT account_id, month, unnest(rows) AS r FROM firsts)
    )
    SELECT
        b.*,
        -- (greatest and least skip NULLs: every case is written out)
        CASE
            WHEN b.billable_minutes IS NULL THEN NULL  -- the pipeline's type is unknown
            WHEN s.used_before IS NULL THEN 0  -- not among the month's first rows
            ELSE greatest(
                0, least(b.billable_minutes, prices['free_action_minutes'] - s.used_before)
            )
        END AS free_minutes,
        CAST(
            (b.billable_minutes - free_minutes) * region_price(prices, 'action_minute', b.region)
            AS DECIMAL(38, 8)  -- a price of 10 digits times minutes: wider than a price
        ) AS cost
    FROM billed AS b
    LEFT JOIN shared AS s USING (action_execution_id, account_id, region, pipeline);

-- One row per V1 pipeline and month it was active in (the rules above): the start of
-- its first execution that made it active, whether it was the account's free one, and
-- its cost.
CREATE OR REPLACE MACRO pipeline_month_costs(prices) AS TABLE
    WITH created AS (
        SELECT account_id, region, pipeline, min(created) AS created
        FROM pipelines
        GROUP BY ALL
    ),
    active AS (
        SELECT
            e.account_id, e.region, e.pipeline,
            CAST(date_trunc('month', e.start_time AT TIME ZONE 'UTC') AS DATE) AS month,
            min(e.start_time) AS first_active
        FROM executions AS e
        ASOF JOIN pipeline_types() AS t
            ON e.account_id = t.account_id AND e.region = t.region AND e.pipeline = t.pipeline
            AND coalesce(e.pipeline_version, -9223372036854775808) >= t.pipeline_version
        LEFT JOIN created AS c
            ON e.account_id = c.account_id AND e.region = c.region AND e.pipeline = c.pipeline
        WHERE t.pipeline_type = 'V1'
            AND e.status <> 'Cancelled'
            AND (c.created IS NULL
                OR e.start_time > c.created + to_days(CAST(prices['free_days'] AS INTEGER)))
        GROUP BY ALL
    )
    SELECT
        *,
        row_number() OVER (
            PARTITION BY account_id, month ORDER BY first_active, region, pipeline
        ) <= prices['free_active_pipelines'] AS free,
        CAST(
            CASE WHEN free THEN 0
                ELSE region_price(prices, 'active_pipeline_month', region)
            END AS DECIMAL(18, 8)
        ) AS cost
    FROM active;
