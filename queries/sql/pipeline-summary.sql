-- Executions per pipeline: outcomes, failure rate, superseded rate, median duration.
-- Executions whose start is in the window. failure_rate = Failed / (Succeeded + Failed):
-- runs that were superseded, stopped or cancelled never reached an outcome, so they do
-- not dilute it. superseded_rate = Superseded / terminal executions (Succeeded, Failed,
-- Stopped, Superseded, Cancelled); running = not terminal (InProgress, Stopping);
-- median_s, p90_s = quantile_cont of last_update_time - start_time over Succeeded
-- executions.
-- (recorder/sql/_stats.sql computes the figures.)
SELECT
    pipeline,
    executions,
    succeeded,
    failed,
    superseded,
    stopped,
    running,
    failed / nullif(succeeded + failed, 0) AS failure_rate,
    superseded / nullif(terminal, 0) AS superseded_rate,
    q[1] AS median_s,
    q[2] AS p90_s
FROM execution_stats($since, $until)
WHERE pipeline_matches(pipeline, $pipelines)
ORDER BY pipeline;
