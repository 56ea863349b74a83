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
-- Each column is a median of its own, so the parts need not add up to total_s.
WITH runs AS (
    SELECT w.*
    FROM stage_waits() AS w
    JOIN executions AS e USING (account_id, region, pipeline, execution_id)
    WHERE e.status = 'Succeeded'
        AND in_window(e.start_time, $since, $until)
        AND pipeline_matches(e.pipeline, $pipelines)
),
per_execution AS (
    SELECT
        account_id, region, pipeline, execution_id,
        seconds_between(min(start_time), max(end_time)) AS total_s,
        sum_exact(duration_s) AS in_stages_s,
        min(wait_s) FILTER (WHERE after_stage IS NULL) AS queued_s,
        coalesce(sum_exact(CASE WHEN after_stage IS NOT NULL THEN wait_s END), 0) AS between_stages_s
    FROM runs
    GROUP BY ALL
),
approvals AS (
    SELECT
        account_id, region, pipeline, execution_id,
        sum_exact(seconds_between(start_time, last_update_time)) AS approval_s
    FROM action_executions
    WHERE category = 'Approval'
    GROUP BY ALL
)
SELECT
    x.pipeline,
    count(*) AS executions,
    quantile_cont(x.total_s, 0.5) AS total_s,
    quantile_cont(x.in_stages_s, 0.5) AS in_stages_s,
    quantile_cont(x.queued_s, 0.5) AS queued_s,
    quantile_cont(x.between_stages_s, 0.5) AS between_stages_s,
    quantile_cont(coalesce(a.approval_s, 0), 0.5) AS approval_s,
    quantile_cont(seconds_between(c.first_created, e.start_time), 0.5) AS source_to_start_s
FROM per_execution AS x
JOIN executions AS e USING (account_id, region, pipeline, execution_id)
LEFT JOIN approvals AS a USING (account_id, region, pipeline, execution_id)
LEFT JOIN first_created() AS c USING (account_id, region, pipeline, execution_id)
GROUP BY x.pipeline
ORDER BY x.pipeline;
