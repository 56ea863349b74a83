-- Executions per pipeline: outcomes, failure rate, superseded rate, duration percentiles.
-- Executions whose start is in the window. failure_rate = Failed / (Succeeded + Failed):
-- runs that were superseded, stopped or cancelled never reached an outcome, so they do
-- not dilute it. superseded_rate = Superseded / terminal executions (Succeeded, Failed,
-- Stopped, Superseded, Cancelled); running = not terminal (InProgress, Stopping);
-- p50_s, p90_s = quantile_cont of last_update_time - start_time over Succeeded
-- executions.
-- (relations/execution_stats.sql computes the figures; failure_rate is _macros.sql's.)
SELECT
    pipeline,
    executions,
    succeeded,
    failed,
    superseded,
    stopped,
    running,
    failure_rate(failed, succeeded) AS failure_rate,
    superseded / nullif(terminal, 0) AS superseded_rate,
    q[1] AS p50_s,
    q[2] AS p90_s
FROM execution_stats($since, $until)
WHERE pipeline_matches(pipeline, $pipelines)
ORDER BY pipeline;
