-- `execution_stats(since, until)` (grain: name).
-- Executions per pipeline: counts by status, terminal and decided (Succeeded or Failed)
-- ones, median and p90 seconds (start to last update) of the Succeeded ones.
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
FROM {executions}
WHERE in_window(start_time, since, until)
GROUP BY pipeline
