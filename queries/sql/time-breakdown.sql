-- Where the time of a successful execution goes: in stages, between them, approvals, source.
-- Over Succeeded executions whose start is in the window, the median (quantile_cont) of:
--   total_s           last stage run end - first stage run start
--   in_stages_s       sum of its stage run durations
--   queued_s          first stage run start - execution start (a queue ahead of it)
--   between_stages_s  sum of its waits between stages (see `stage-waits`; the wait
--                     before the first stage is queued_s)
--   approval_s        sum of its Approval action durations (0 without one)
--   source_to_start_s execution start - earliest artifact revision `created` (executions
--                     without one are left out of this median only)
-- Each column is a median of its own, so the parts need not add up to total_s. The
-- per-execution figures are `execution_times` (recorder/sql/_execution_times.sql).
SELECT
    t.pipeline,
    count(*) AS executions,
    quantile_cont(t.total_s, 0.5) AS total_s,
    quantile_cont(t.in_stages_s, 0.5) AS in_stages_s,
    quantile_cont(t.queued_s, 0.5) AS queued_s,
    quantile_cont(t.between_stages_s, 0.5) AS between_stages_s,
    quantile_cont(t.approval_s, 0.5) AS approval_s,
    quantile_cont(seconds_between(t.first_created, e.start_time), 0.5) AS source_to_start_s
FROM execution_times AS t
JOIN executions AS e USING (account_id, region, pipeline, execution_id)
WHERE e.status = 'Succeeded'
    AND in_window(e.start_time, $since, $until)
    AND pipeline_matches(e.pipeline, $pipelines)
GROUP BY t.pipeline
ORDER BY t.pipeline;
