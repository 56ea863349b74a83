-- running-long: a stage run (scope "stage") or an action execution (scope "action") still
-- running for at least its limit. The limit is `factor` x the p95 duration (quantile_cont)
-- of its own Succeeded runs that started in the `days` before the clock (the same
-- pipeline and stage, or stage and action), when there are at least `min_runs` of them;
-- else the absolute bound `max_hours`. since = its start. Approvals are left to
-- approval-waiting: an action of category Approval, and a stage run with a pending
-- approval, are not evaluated. One alert per stage run (execution, stage) or action
-- execution.
WITH running_actions AS (
    SELECT a.account_id, a.region, a.pipeline, a.execution_id, a.stage, a.action,
        a.action_execution_id AS run_id, a.start_time
    FROM action_executions AS a
    JOIN watch_pipelines AS w USING (account_id, region, pipeline)
    WHERE w.running_long_enabled AND w.running_long_scope = 'action'
        AND a.status = 'InProgress' AND a.category IS DISTINCT FROM 'Approval'
),
pending_approvals AS (
    SELECT DISTINCT account_id, region, pipeline, execution_id, stage
    FROM action_executions
    WHERE category = 'Approval' AND status = 'InProgress'
),
running_stages AS (
    SELECT r.account_id, r.region, r.pipeline, r.execution_id, r.stage,
        CAST(NULL AS VARCHAR) AS action, r.execution_id AS run_id, r.start_time
    FROM stage_runs AS r
    JOIN watch_pipelines AS w USING (account_id, region, pipeline)
    ANTI JOIN pending_approvals AS p USING (account_id, region, pipeline, execution_id, stage)
    WHERE w.running_long_enabled AND w.running_long_scope = 'stage' AND NOT r.terminal
),
done AS (
    SELECT account_id, region, pipeline, stage, action, start_time,
        seconds_between(start_time, last_update_time) AS duration_s
    FROM action_executions
    WHERE status = 'Succeeded' AND category IS DISTINCT FROM 'Approval'
    UNION ALL
    SELECT account_id, region, pipeline, stage, NULL, start_time, duration_s
    FROM stage_runs
    WHERE terminal AND status = 'Succeeded'
),
running AS (
    SELECT * FROM running_actions
    UNION ALL
    SELECT * FROM running_stages
),
baseline AS (
    SELECT r.account_id, r.region, r.pipeline, r.run_id, r.stage, r.action,
        count(d.duration_s) AS runs,
        quantile_cont(d.duration_s, 0.95) AS p95_s
    FROM running AS r
    JOIN watch_pipelines AS w USING (account_id, region, pipeline)
    LEFT JOIN done AS d
        ON d.account_id = r.account_id AND d.region = r.region AND d.pipeline = r.pipeline
        AND d.stage = r.stage AND d.action IS NOT DISTINCT FROM r.action
        AND d.start_time >= w.clock
            - to_microseconds(CAST(round(w.running_long_days * 86400e6) AS BIGINT))
        AND d.start_time < w.clock
    GROUP BY ALL
),
limits AS (
    SELECT r.*, b.runs, b.p95_s, w.clock, w.running_long_factor AS factor,
        w.running_long_days AS days, w.running_long_min_runs AS min_runs,
        w.running_long_repeat_hours AS repeat_hours,
        -- to the microsecond, as ages are: 3 x a p95 of 479.99999999999994 is 1440 s
        round(CASE
            WHEN b.runs >= w.running_long_min_runs THEN w.running_long_factor * b.p95_s
            ELSE w.running_long_max_hours * 3600
        END, 6) AS limit_s
    FROM running AS r
    JOIN baseline AS b USING (account_id, region, pipeline, run_id, stage)
    JOIN watch_pipelines AS w USING (account_id, region, pipeline)
    WHERE b.action IS NOT DISTINCT FROM r.action
)
SELECT
    'running-long' AS rule,
    account_id, region, pipeline, stage, action, execution_id,
    concat_ws('/', stage, action, run_id) AS subject,
    start_time AS since,
    seconds_between(start_time, clock) AS age_s,
    seconds_between(start_time, clock) AS value,
    limit_s AS threshold,
    CASE
        WHEN runs >= min_runs
            THEN printf('%g x its p95 of %.1f s over %d runs in %g days', factor, p95_s,
                runs, days)
        ELSE printf('the absolute bound (%d of the %d runs needed for a p95 in %g days)',
            runs, min_runs, days)
    END AS detail,
    repeat_hours * 3600 AS repeat_s,
    clock
FROM limits
WHERE seconds_between(start_time, clock) >= limit_s
