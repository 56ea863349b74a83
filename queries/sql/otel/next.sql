-- `cprec export otel`: the next $limit executions of otel_executions (executions.sql)
-- after the cursor ($after_*; NULL: the first), in the order the cursor follows.
SELECT *
FROM otel_executions
WHERE $after_recorded_at IS NULL
    OR row(recorded_at, account_id, region, pipeline, execution_id)
        > row($after_recorded_at, $after_account_id, $after_region, $after_pipeline,
              $after_execution_id)
ORDER BY recorded_at, account_id, region, pipeline, execution_id
LIMIT $limit
