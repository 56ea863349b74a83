-- approval-waiting: a manual approval waiting for at least `hours`.
-- An action execution of category Approval still InProgress; since = its start; fires
-- when clock - since >= hours (the clock: _clock.sql). One alert per approval (its
-- action_execution_id): a new approval is a new alert. CodePipeline rejects an approval
-- left for 7 days; the message says how long is left.
SELECT
    'approval-waiting' AS rule,
    a.account_id, a.region, a.pipeline, a.stage, a.action, a.execution_id,
    a.stage || '/' || a.action || '/' || a.action_execution_id AS subject,
    a.start_time AS since,
    seconds_between(a.start_time, w.clock) AS age_s,
    seconds_between(a.start_time, w.clock) AS value,
    w.approval_waiting_hours * 3600 AS threshold,
    CAST(NULL AS VARCHAR) AS detail,
    w.approval_waiting_repeat_hours * 3600 AS repeat_s,
    w.clock
FROM action_executions AS a
JOIN watch_pipelines AS w USING (account_id, region, pipeline)
WHERE w.approval_waiting_enabled
    AND a.category = 'Approval' AND a.status = 'InProgress'
    AND seconds_between(a.start_time, w.clock) >= w.approval_waiting_hours * 3600
