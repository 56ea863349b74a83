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
-- per-execution figures are `execution_times` (relations/execution_times.sql), the
-- medians queries/sql/relations/*_stats.sql.
SELECT
    pipeline,
    executions,
    total_s,
    in_stages_s,
    queued_s,
    between_stages_s,
    approval_s,
    source_to_start_s
FROM execution_time_stats($since, $until)
WHERE pipeline_matches(pipeline, $pipelines)
ORDER BY pipeline;
