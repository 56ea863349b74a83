-- `execution_times` (grain: execution). One row per execution with stage runs, where its time went:
--   total_s           last stage run end - first stage run start
--   in_stages_s       sum of its stage run durations
--   queued_s          first stage run start - execution start (stage_runs.wait_s of its
--                     first stage run; NULL when the execution is not recorded)
--   between_stages_s  sum of the waits (wait_s) before its other stage runs
--   approval_s        sum of its Approval action execution durations (0 without one)
--   first_created     the earliest `created` of its artifact revisions
--                     (GetPipelineExecution's artifactRevisions; NULL without one)
WITH runs AS (
    SELECT
        account_id, region, pipeline, execution_id,
        seconds_between(min(start_time), max(end_time)) AS total_s,
        sum_exact(duration_s) AS in_stages_s,
        min(wait_s) FILTER (WHERE after_stage IS NULL) AS queued_s,
        coalesce(sum_exact(CASE WHEN after_stage IS NOT NULL THEN wait_s END), 0)
            AS between_stages_s
    FROM {stage_runs}
    GROUP BY ALL
),
approvals AS (
    SELECT
        account_id, region, pipeline, execution_id,
        sum_exact(seconds_between(start_time, last_update_time)) AS approval_s
    FROM {action_executions}
    WHERE category = 'Approval'
    GROUP BY ALL
),
created AS (
    SELECT account_id, region, pipeline, execution_id, min(created) AS first_created
    FROM {execution_revisions}
    WHERE kind = 'artifact' AND created IS NOT NULL
    GROUP BY ALL
)
SELECT r.*, coalesce(a.approval_s, 0) AS approval_s, c.first_created
FROM runs AS r
LEFT JOIN approvals AS a USING (account_id, region, pipeline, execution_id)
LEFT JOIN created AS c USING (account_id, region, pipeline, execution_id)
