-- `cprec export otel`: the stage runs (relations/stage_runs.sql: times, status, attempts,
-- the wait before each) of otel_executions.
SELECT
    account_id, region, pipeline, execution_id, stage, start_time, end_time, status,
    attempts, after_stage, wait_s,
    row_number() OVER (ORDER BY start_time, stage) AS _order
FROM stage_runs
SEMI JOIN otel_executions USING (account_id, region, pipeline, execution_id)
