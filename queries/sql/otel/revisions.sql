-- `cprec export otel`: the source and artifact revisions of the executions named by $keys.
SELECT
    account_id, region, pipeline, execution_id, kind, name, revision_id,
    revision_change_id, revision_summary, revision_url
FROM execution_revisions
WHERE concat_ws('|', account_id, region, pipeline, execution_id) IN (SELECT unnest($keys))
ORDER BY account_id, region, pipeline, execution_id, kind DESC, name
