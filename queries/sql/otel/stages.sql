-- `cprec export otel`: the stage runs (relations/stage_runs.sql: times, status, attempts,
-- the wait before each) of the executions named by $keys.
SELECT
    account_id, region, pipeline, execution_id, stage, start_time, end_time, status,
    attempts, after_stage, wait_s
FROM stage_runs
WHERE concat_ws('|', account_id, region, pipeline, execution_id) IN (SELECT unnest($keys))
ORDER BY account_id, region, pipeline, execution_id, start_time, stage
