-- `action_stats(since, until)` (grain: name).
-- Action executions in a terminal status (action_terminal) per pipeline, stage and action:
-- attempts, p50/p90/p95 (quantile_cont), max and mean seconds (start to last update),
-- Succeeded and Failed ones, first start. Each attempt counts.
SELECT
    pipeline,
    stage,
    action,
    count(*) AS attempts,
    quantile_cont(seconds_between(start_time, last_update_time), [0.5, 0.9, 0.95]) AS q,
    max(seconds_between(start_time, last_update_time)) AS max_s,
    mean_exact(seconds_between(start_time, last_update_time)) AS mean_s,
    count(*) FILTER (WHERE status = 'Succeeded') AS succeeded,
    count(*) FILTER (WHERE status = 'Failed') AS failed,
    min(start_time) AS first_start
FROM {action_executions}
WHERE action_terminal(status) AND in_window(start_time, since, until)
GROUP BY pipeline, stage, action
