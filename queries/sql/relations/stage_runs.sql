-- `stage_runs` (grain: execution). One row per execution x stage (a "stage run", DESIGN.md): the action executions
-- of one (execution_id, stage).
--   start_time   = min(start_time) of its action executions
--   end_time     = max(last_update_time)
--   duration_s   = end_time - start_time, in seconds
--   terminal     = none of its action executions and condition rules is InProgress
--   attempts     = the number of rounds: the most executions any one action has in
--                  the run (1 without a retry; a retry of failed actions adds one)
--   status       = the stage's own outcome, from its actions and its conditions, as
--                  CodePipeline decides it: InProgress if any action execution, or the
--                  latest evaluation of any rule of a condition evaluated once the run
--                  began (on success, on failure), is InProgress; else Failed if the
--                  latest execution of any action, or the latest evaluation of such a
--                  rule, Failed (a deployment whose alarm rule failed it is a failed
--                  deployment); else Abandoned if the latest of any action was
--                  Abandoned; else Succeeded. "Latest" is by start_time, then
--                  last_update_time, then the execution id, so a failure fixed by a
--                  retry leaves the stage Succeeded.
--   actions, action_executions = distinct actions, action executions in the run
--   after_stage  = the stage of the same execution whose run started last before this
--                  one (by start_time, then stage name); NULL for the first stage run
--   wait_s       = start_time - the end_time of that run; for the execution's first
--                  stage run, start_time - the execution's start (a queue ahead of the
--                  first stage counts too), NULL when the execution is not recorded.
--                  It holds queues, disabled transitions and entry conditions.
WITH per_action AS (
    SELECT
        account_id, region, pipeline, execution_id, stage, action,
        count(*) AS runs,
        max_by(status, row(start_time, last_update_time, action_execution_id)) AS latest_status,
        count(*) FILTER (WHERE status = 'InProgress') AS in_progress,
        min(start_time) AS start_time,
        max(last_update_time) AS end_time
    FROM {action_executions}
    GROUP BY ALL
),
runs AS (
    SELECT
        account_id,
        region,
        pipeline,
        execution_id,
        stage,
        min(start_time) AS start_time,
        max(end_time) AS end_time,
        seconds_between(min(start_time), max(end_time)) AS duration_s,
        CASE
            WHEN sum(in_progress) > 0 THEN 'InProgress'
            WHEN bool_or(latest_status = 'Failed') THEN 'Failed'
            WHEN bool_or(latest_status = 'Abandoned') THEN 'Abandoned'
            ELSE 'Succeeded'
        END AS action_status,
        max(runs) AS attempts,
        sum(in_progress) = 0 AS terminal,
        count(*) AS actions,
        CAST(sum(runs) AS BIGINT) AS action_executions
    FROM per_action
    GROUP BY account_id, region, pipeline, execution_id, stage
),
rules AS (
    SELECT
        account_id, region, pipeline, execution_id, stage, rule,
        max_by(status, row(start_time, last_update_time, rule_execution_id)) AS latest_status,
        max(start_time) AS latest_start
    FROM {rule_executions}
    GROUP BY ALL
),
-- per stage: the latest start of a rule whose latest evaluation Failed, and of one still
-- InProgress; a run's condition failed (is running) when that start is not before the
-- run's own (an entry condition is evaluated before the run begins)
conditions AS (
    SELECT
        account_id, region, pipeline, execution_id, stage,
        max(latest_start) FILTER (WHERE latest_status = 'Failed') AS failed_start,
        max(latest_start) FILTER (WHERE latest_status = 'InProgress') AS running_start
    FROM rules
    GROUP BY ALL
)
SELECT
    r.account_id, r.region, r.pipeline, r.execution_id, r.stage,
    r.start_time, r.end_time, r.duration_s,
    CASE
        WHEN r.action_status = 'InProgress' OR c.running_start >= r.start_time THEN 'InProgress'
        WHEN r.action_status = 'Failed' OR c.failed_start >= r.start_time THEN 'Failed'
        ELSE r.action_status
    END AS status,
    r.attempts,
    r.terminal AND NOT coalesce(c.running_start >= r.start_time, false) AS terminal,
    r.actions, r.action_executions,
    lag(r.stage) OVER run AS after_stage,
    seconds_between(coalesce(lag(r.end_time) OVER run, e.start_time), r.start_time) AS wait_s
FROM runs AS r
LEFT JOIN conditions AS c USING (account_id, region, pipeline, execution_id, stage)
LEFT JOIN {executions} AS e USING (account_id, region, pipeline, execution_id)
WINDOW run AS (
    PARTITION BY r.account_id, r.region, r.pipeline, r.execution_id
    ORDER BY r.start_time, r.stage
)
