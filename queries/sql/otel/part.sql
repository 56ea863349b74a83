-- `cprec export otel`: the rows of one part (otel_actions, otel_stages, otel_revisions:
-- `{part}`) of the executions named by $keys ('account|region|pipeline|execution_id').
SELECT * EXCLUDE (_order)
FROM {part}
WHERE concat_ws('|', account_id, region, pipeline, execution_id) IN (SELECT unnest($keys))
ORDER BY _order
