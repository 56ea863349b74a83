-- `cprec export otel`: the stage runs (relations/stage_runs.sql: times, status, attempts,
-- the wait before each) of otel_executions; not one without a time (all its action
-- executions lack a start, or an end: actions.sql leaves them out too).
SELECT
    account_id, region, pipeline, execution_id, stage, start_time, end_time, status,
    attempts, after_stage, wait_s,
    row_number() OVER (ORDER BY start_time, stage) AS _order
FROM stage_runs
SEMI JOIN otel_executions USING (account_id, region, pipeline, execution_id)
WHERE start_time IS NOT NULL AND end_time IS NOT NULL
