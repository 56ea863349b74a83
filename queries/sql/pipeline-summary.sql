-- Executions per pipeline: outcomes, failure rate, superseded rate, median duration.
-- Executions whose start is in the window. failure_rate = Failed / (Succeeded + Failed):
-- runs that were superseded, stopped or cancelled never reached an outcome, so they do
-- not dilute it. superseded_rate = Superseded / terminal executions (Succeeded, Failed,
-- Stopped, Superseded, Cancelled); running = not terminal (InProgress, Stopping);
-- median_s, p90_s = quantile_cont of last_update_time - start_time over Succeeded
-- executions.
SELECT
    pipeline,
    count(*) AS executions,
    count(*) FILTER (WHERE status = 'Succeeded') AS succeeded,
    count(*) FILTER (WHERE status = 'Failed') AS failed,
    count(*) FILTER (WHERE status = 'Superseded') AS superseded,
    count(*) FILTER (WHERE status = 'Stopped') AS stopped,
    count(*) FILTER (WHERE NOT execution_terminal(status)) AS running,
    count(*) FILTER (WHERE status = 'Failed')
        / nullif(count(*) FILTER (WHERE status IN ('Succeeded', 'Failed')), 0) AS failure_rate,
    count(*) FILTER (WHERE status = 'Superseded')
        / nullif(count(*) FILTER (WHERE execution_terminal(status)), 0) AS superseded_rate,
    quantile_cont(seconds_between(start_time, last_update_time), 0.5)
        FILTER (WHERE status = 'Succeeded') AS median_s,
    quantile_cont(seconds_between(start_time, last_update_time), 0.9)
        FILTER (WHERE status = 'Succeeded') AS p90_s
FROM executions
WHERE in_window(start_time, $since, $until)
    AND pipeline_matches(pipeline, $pipelines)
GROUP BY pipeline
ORDER BY pipeline;
