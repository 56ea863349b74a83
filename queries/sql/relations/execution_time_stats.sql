-- `execution_time_stats(since, until)` (grain: name).
-- Where the time of Succeeded executions whose start is in the window goes, per pipeline:
-- the median (quantile_cont) of each column of execution_times (sql/_execution_times.sql)
-- and of source_to_start_s = execution start - first_created (executions without a
-- `created` are left out of that median only).
SELECT
    t.pipeline,
    count(*) AS executions,
    quantile_cont(t.total_s, 0.5) AS total_s,
    quantile_cont(t.in_stages_s, 0.5) AS in_stages_s,
    quantile_cont(t.queued_s, 0.5) AS queued_s,
    quantile_cont(t.between_stages_s, 0.5) AS between_stages_s,
    quantile_cont(t.approval_s, 0.5) AS approval_s,
    quantile_cont(seconds_between(t.first_created, e.start_time), 0.5) AS source_to_start_s
FROM {execution_times} AS t
JOIN {executions} AS e USING (account_id, region, pipeline, execution_id)
WHERE e.status = 'Succeeded' AND in_window(e.start_time, since, until)
GROUP BY t.pipeline
