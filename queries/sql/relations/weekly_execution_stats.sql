-- `weekly_execution_stats(since, until)` (grain: name).
-- Executions per pipeline and week of their start (weeks start on Monday, UTC): count,
-- Succeeded and Failed ones, terminal ones, median seconds (start to last update) of the
-- Succeeded ones (as execution_stats).
SELECT
    pipeline,
    CAST(date_trunc('week', start_time AT TIME ZONE 'UTC') AS DATE) AS week,
    count(*) AS executions,
    count(*) FILTER (WHERE status = 'Succeeded') AS succeeded,
    count(*) FILTER (WHERE status = 'Failed') AS failed,
    count(*) FILTER (WHERE execution_terminal(status)) AS terminal,
    quantile_cont(seconds_between(start_time, last_update_time), 0.5)
        FILTER (WHERE status = 'Succeeded') AS p50_s
FROM {executions}
WHERE in_window(start_time, since, until)
GROUP BY ALL
