-- Per-pipeline statistics behind the heaviest named queries, as table macros of the time
-- window (since, until: TIMESTAMPTZ or NULL = open; on each row's start, until
-- exclusive). Every group holds one pipeline (name), so a pipeline's rows depend on that
-- pipeline's rows only: the query cache stores each macro's rows for the open window
-- (since and until NULL), recomputed for the pipelines a refresh touched, and
-- recorder/views.py names `<name>(since, until)` the macro that reads those stored rows
-- for the open window and computes `compute_<name>(since, until)` for any other.
-- Created after the views and macros they read (recorder/views.py).

-- Terminal stage runs (no action execution InProgress) per pipeline and stage: count,
-- p50/p90/p95 (quantile_cont, one sort per group), max and mean seconds, first start.
CREATE OR REPLACE MACRO compute_stage_duration_stats(since, until) AS TABLE
    SELECT
        pipeline,
        stage,
        count(*) AS executions,
        quantile_cont(duration_s, [0.5, 0.9, 0.95]) AS q,
        max(duration_s) AS max_s,
        mean_exact(duration_s) AS mean_s,
        min(start_time) AS first_start
    FROM stage_runs
    WHERE terminal AND in_window(start_time, since, until)
    GROUP BY pipeline, stage;

-- Stage runs with a wait (stage_runs.wait_s) per pipeline and stage: count, p50/p90
-- (quantile_cont), max and total seconds, first start.
CREATE OR REPLACE MACRO compute_stage_wait_stats(since, until) AS TABLE
    SELECT
        pipeline,
        stage,
        count(*) AS runs,
        quantile_cont(wait_s, [0.5, 0.9]) AS q,
        max(wait_s) AS max_wait_s,
        sum_exact(wait_s) AS total_wait_s,
        min(start_time) AS first_start
    FROM stage_runs
    WHERE wait_s IS NOT NULL AND in_window(start_time, since, until)
    GROUP BY pipeline, stage;

-- Terminal stage runs per pipeline and stage: runs, retried (attempts > 1), extra attempts
-- (sum of attempts - 1), first start.
CREATE OR REPLACE MACRO compute_stage_retry_stats(since, until) AS TABLE
    SELECT
        pipeline,
        stage,
        count(*) AS runs,
        count(*) FILTER (WHERE attempts > 1) AS retried,
        CAST(sum(attempts - 1) AS BIGINT) AS extra_attempts,
        min(start_time) AS first_start
    FROM stage_runs
    WHERE terminal AND in_window(start_time, since, until)
    GROUP BY pipeline, stage;

-- Action executions in a terminal status (action_terminal) per pipeline, stage and action:
-- count, p50/p90/p95 (quantile_cont), max and mean seconds (start to last update), Failed
-- ones, first start. Each attempt counts.
CREATE OR REPLACE MACRO compute_action_stats(since, until) AS TABLE
    SELECT
        pipeline,
        stage,
        action,
        count(*) AS executions,
        quantile_cont(seconds_between(start_time, last_update_time), [0.5, 0.9, 0.95]) AS q,
        max(seconds_between(start_time, last_update_time)) AS max_s,
        mean_exact(seconds_between(start_time, last_update_time)) AS mean_s,
        count(*) FILTER (WHERE status = 'Failed') AS failed,
        min(start_time) AS first_start
    FROM action_executions
    WHERE action_terminal(status) AND in_window(start_time, since, until)
    GROUP BY pipeline, stage, action;

-- Action runs (action_runs) whose first start is in the window, per pipeline, stage and
-- action: runs (executions in which the action ran), flaky ones, the first start of the
-- latest flaky one.
CREATE OR REPLACE MACRO compute_flaky_stats(since, until) AS TABLE
    SELECT
        pipeline,
        stage,
        action,
        count(*) AS executions,
        count(*) FILTER (WHERE flaky) AS flaky,
        max(first_start) FILTER (WHERE flaky) AS last_flaky
    FROM action_runs
    WHERE in_window(first_start, since, until)
    GROUP BY pipeline, stage, action;

-- Executions per pipeline: counts by status, terminal and decided (Succeeded or Failed)
-- ones, median and p90 seconds (start to last update) of the Succeeded ones.
CREATE OR REPLACE MACRO compute_execution_stats(since, until) AS TABLE
    SELECT
        pipeline,
        count(*) AS executions,
        count(*) FILTER (WHERE status = 'Succeeded') AS succeeded,
        count(*) FILTER (WHERE status = 'Failed') AS failed,
        count(*) FILTER (WHERE status = 'Superseded') AS superseded,
        count(*) FILTER (WHERE status = 'Stopped') AS stopped,
        count(*) FILTER (WHERE NOT execution_terminal(status)) AS running,
        count(*) FILTER (WHERE execution_terminal(status)) AS terminal,
        quantile_cont(seconds_between(start_time, last_update_time), [0.5, 0.9])
            FILTER (WHERE status = 'Succeeded') AS q
    FROM executions
    WHERE in_window(start_time, since, until)
    GROUP BY pipeline;

-- Executions per pipeline and week of their start (weeks start on Monday, UTC): count,
-- Failed ones, terminal ones, median seconds (start to last update) of the terminal ones.
CREATE OR REPLACE MACRO compute_weekly_execution_stats(since, until) AS TABLE
    SELECT
        pipeline,
        CAST(date_trunc('week', start_time AT TIME ZONE 'UTC') AS DATE) AS week,
        count(*) AS executions,
        count(*) FILTER (WHERE status = 'Failed') AS failed,
        count(*) FILTER (WHERE execution_terminal(status)) AS terminal,
        quantile_cont(seconds_between(start_time, last_update_time), 0.5)
            FILTER (WHERE execution_terminal(status)) AS p50_s
    FROM executions
    WHERE in_window(start_time, since, until)
    GROUP BY ALL;

-- Where the time of Succeeded executions whose start is in the window goes, per pipeline:
-- the median (quantile_cont) of each column of execution_times (sql/_execution_times.sql)
-- and of source_to_start_s = execution start - first_created (executions without a
-- `created` are left out of that median only).
CREATE OR REPLACE MACRO compute_execution_time_stats(since, until) AS TABLE
    SELECT
        t.pipeline,
        count(*) AS executions,
        quantile_cont(t.total_s, 0.5) AS total_s,
        quantile_cont(t.in_stages_s, 0.5) AS in_stages_s,
        quantile_cont(t.queued_s, 0.5) AS queued_s,
        quantile_cont(t.between_stages_s, 0.5) AS between_stages_s,
        quantile_cont(t.approval_s, 0.5) AS approval_s,
        quantile_cont(seconds_between(t.first_created, e.start_time), 0.5) AS source_to_start_s
    FROM execution_times AS t
    JOIN executions AS e USING (account_id, region, pipeline, execution_id)
    WHERE e.status = 'Succeeded' AND in_window(e.start_time, since, until)
    GROUP BY t.pipeline;

-- Deployment attempts (deploy_attempts) whose time is in the window, per pipeline and
-- deploy stage: deployments (Succeeded, STANDARD), rollback_deployments (Succeeded,
-- ROLLBACK), deploy_days (distinct UTC dates of deployments), last_deploy, first_attempt,
-- median_interval_s (median seconds between consecutive deployments), and first_start,
-- the pipeline's first recorded execution start (all time).
CREATE OR REPLACE MACRO compute_deploy_stats(patterns, since, until) AS TABLE
    WITH attempts AS (
        SELECT *
        FROM deploy_attempts(patterns)
        WHERE in_window(deploy_time, since, until)
    ),
    intervals AS (
        SELECT
            pipeline, stage,
            quantile_cont(interval_s, 0.5) AS median_interval_s
        FROM (
            SELECT
                pipeline, stage,
                seconds_between(
                    lag(deploy_time) OVER (
                        PARTITION BY account_id, region, pipeline, stage
                        ORDER BY deploy_time, execution_id
                    ),
                    deploy_time
                ) AS interval_s
            FROM attempts
            WHERE status = 'Succeeded' AND NOT rollback
        )
        GROUP BY ALL
    ),
    per_stage AS (
        SELECT
            pipeline, stage,
            count(*) FILTER (WHERE status = 'Succeeded' AND NOT rollback) AS deployments,
            count(*) FILTER (WHERE status = 'Succeeded' AND rollback) AS rollback_deployments,
            count(DISTINCT CAST(deploy_time AT TIME ZONE 'UTC' AS DATE))
                FILTER (WHERE status = 'Succeeded' AND NOT rollback) AS deploy_days,
            max(deploy_time) FILTER (WHERE status = 'Succeeded' AND NOT rollback)
                AS last_deploy,
            min(deploy_time) AS first_attempt
        FROM attempts
        GROUP BY ALL
    ),
    first_start AS (
        SELECT pipeline, min(start_time) AS first_start
        FROM executions
        SEMI JOIN per_stage USING (pipeline)
        GROUP BY pipeline
    )
    SELECT p.*, i.median_interval_s, f.first_start
    FROM per_stage AS p
    LEFT JOIN intervals AS i USING (pipeline, stage)
    LEFT JOIN first_start AS f USING (pipeline);
