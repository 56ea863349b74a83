-- Manual approvals per pipeline, stage and action: outcomes and how long they waited.
-- Action executions of category Approval whose start is in the window. approved =
-- Succeeded, rejected = Failed, abandoned = Abandoned (the execution moved on or stopped
-- before anyone decided), pending = InProgress. Waits (last_update_time - start_time,
-- seconds) are split by outcome: p50_approval_s, p90_approval_s, max_approval_s over the decided ones (approved or
-- rejected; abandoned ones are not decisions and are left out), p50_abandoned_s over the
-- abandoned ones; oldest_pending_s is measured to $now.
SELECT
    pipeline,
    stage,
    action,
    count(*) AS approvals,
    count(*) FILTER (WHERE status = 'Succeeded') AS approved,
    count(*) FILTER (WHERE status = 'Failed') AS rejected,
    count(*) FILTER (WHERE status = 'Abandoned') AS abandoned,
    count(*) FILTER (WHERE status = 'InProgress') AS pending,
    quantile_cont(seconds_between(start_time, last_update_time), 0.5)
        FILTER (WHERE status IN ('Succeeded', 'Failed')) AS p50_approval_s,
    quantile_cont(seconds_between(start_time, last_update_time), 0.9)
        FILTER (WHERE status IN ('Succeeded', 'Failed')) AS p90_approval_s,
    max(seconds_between(start_time, last_update_time))
        FILTER (WHERE status IN ('Succeeded', 'Failed')) AS max_approval_s,
    quantile_cont(seconds_between(start_time, last_update_time), 0.5)
        FILTER (WHERE status = 'Abandoned') AS p50_abandoned_s,
    max(seconds_between(start_time, CAST($now AS TIMESTAMPTZ)))
        FILTER (WHERE status = 'InProgress') AS oldest_pending_s
FROM action_executions
WHERE category = 'Approval'
    AND in_window(start_time, $since, $until)
    AND pipeline_matches(pipeline, $pipelines)
GROUP BY pipeline, stage, action
ORDER BY pipeline, min(start_time), stage, action;
