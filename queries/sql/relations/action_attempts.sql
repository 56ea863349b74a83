-- `action_attempts` (grain: execution). One row per action execution that reached an end
-- (action_terminal: Succeeded, Failed, Abandoned), with what `cost` bills it by:
--   end_time          its last_update_time (the time it reached that end)
--   execution_status  the status of its pipeline execution (NULL when the execution
--                     is not recorded)
--   retried           a later attempt of the same action in the same execution exists
--                     (a retry of the stage replaced it): by start_time, then
--                     last_update_time, then the action execution id
WITH attempts AS (
    SELECT
        account_id, region, pipeline, execution_id, pipeline_version,
        stage, action, action_execution_id, category, owner, provider, status,
        start_time, last_update_time AS end_time,
        row_number() OVER (
            PARTITION BY account_id, region, pipeline, execution_id, stage, action
            ORDER BY start_time DESC, last_update_time DESC, action_execution_id DESC
        ) > 1 AS retried
    FROM {action_executions}
)
SELECT a.*, e.status AS execution_status
FROM attempts AS a
LEFT JOIN {executions} AS e USING (account_id, region, pipeline, execution_id)
WHERE action_terminal(a.status)
