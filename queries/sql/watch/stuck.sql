-- stuck: an execution InProgress (or Stopping) whose recorded state has not changed for
-- at least `minutes`. Its last change = the latest of the execution's last_update_time
-- and the start and last_update_time of each of its action executions; since = that
-- change; stage and action = the action execution that started last. An execution
-- waiting for an approval is left to approval-waiting. One alert per execution.
WITH running AS (
    SELECT e.account_id, e.region, e.pipeline, e.execution_id, e.status,
        greatest(e.start_time, e.last_update_time) AS changed_at, w.clock,
        w.stuck_minutes AS minutes, w.stuck_repeat_hours AS repeat_hours
    FROM executions AS e
    JOIN watch_pipelines AS w USING (account_id, region, pipeline)
    WHERE w.stuck_enabled AND e.status IN ('InProgress', 'Stopping')
),
actions AS (
    SELECT a.account_id, a.region, a.pipeline, a.execution_id,
        max(greatest(a.start_time, a.last_update_time)) AS changed_at,
        arg_max(a.stage, row(a.start_time, a.action_execution_id)) AS stage,
        arg_max(a.action, row(a.start_time, a.action_execution_id)) AS action,
        bool_or(a.category = 'Approval' AND a.status = 'InProgress') AS awaiting_approval
    FROM action_executions AS a
    SEMI JOIN running AS r USING (account_id, region, pipeline, execution_id)
    GROUP BY ALL
),
changes AS (
    SELECT r.*, greatest(r.changed_at, a.changed_at) AS since, a.stage, a.action,
        coalesce(a.awaiting_approval, false) AS awaiting_approval
    FROM running AS r
    LEFT JOIN actions AS a USING (account_id, region, pipeline, execution_id)
)
SELECT
    'stuck' AS rule,
    account_id, region, pipeline, stage, action, execution_id,
    execution_id AS subject,
    since,
    seconds_between(since, clock) AS age_s,
    seconds_between(since, clock) AS value,
    minutes * 60 AS threshold,
    'execution ' || execution_id || ' ' || status AS detail,
    repeat_hours * 3600 AS repeat_s,
    clock
FROM changes
WHERE NOT awaiting_approval AND seconds_between(since, clock) >= minutes * 60
