-- Manual approvals per pipeline, stage and action: outcomes and how long they waited.
-- Action executions of category Approval whose start is in the window. approved =
-- Succeeded, rejected = Failed, abandoned = Abandoned, pending = InProgress; wait percentiles
-- and max are over the decided ones (last_update_time - start_time, seconds);
-- oldest_pending_s is measured to $now.
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
        FILTER (WHERE action_terminal(status)) AS p50_wait_s,
    quantile_cont(seconds_between(start_time, last_update_time), 0.9)
        FILTER (WHERE action_terminal(status)) AS p90_wait_s,
    max(seconds_between(start_time, last_update_time))
        FILTER (WHERE action_terminal(status)) AS max_wait_s,
    max(seconds_between(start_time, CAST($now AS TIMESTAMPTZ)))
        FILTER (WHERE status = 'InProgress') AS oldest_pending_s
FROM action_executions
WHERE category = 'Approval'
    AND in_window(start_time, $since, $until)
    AND pipeline_matches(pipeline, $pipelines)
GROUP BY pipeline, stage, action
ORDER BY pipeline, min(start_time), stage, action;
