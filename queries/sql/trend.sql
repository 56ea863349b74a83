-- Weekly executions, failures, failure rate and median duration per pipeline.
-- Weeks start on Monday (UTC) and hold the executions that started in them (and in the
-- window). failure_rate = Failed / terminal executions; p50_s = median duration of the
-- terminal ones (last_update_time - start_time).
SELECT
    pipeline,
    CAST(date_trunc('week', start_time AT TIME ZONE 'UTC') AS DATE) AS week,
    count(*) AS executions,
    count(*) FILTER (WHERE status = 'Failed') AS failed,
    count(*) FILTER (WHERE status = 'Failed')
        / nullif(count(*) FILTER (WHERE execution_terminal(status)), 0) AS failure_rate,
    quantile_cont(seconds_between(start_time, last_update_time), 0.5)
        FILTER (WHERE execution_terminal(status)) AS p50_s
FROM executions
WHERE in_window(start_time, $since, $until)
    AND pipeline_matches(pipeline, $pipelines)
GROUP BY ALL
ORDER BY pipeline, week;
