-- `action_runs` (grain: execution). One row per
-- execution x stage x action (an "action run": every attempt of one action in one
-- execution):
--   first_start = min(start_time) of its attempts
--   attempts    = its action executions
--   flaky       = a Failed attempt was followed by a later Succeeded one (a retry fixed
--                 it): the first Failed start < the last Succeeded start
SELECT
    account_id, region, pipeline, execution_id, stage, action,
    min(start_time) AS first_start,
    count(*) AS attempts,
    coalesce(
        min(start_time) FILTER (WHERE status = 'Failed')
            < max(start_time) FILTER (WHERE status = 'Succeeded'),
        false
    ) AS flaky
FROM {action_executions}
GROUP BY account_id, region, pipeline, execution_id, stage, action
