-- `cprec export otel`: the source and artifact revisions of otel_executions, sources
-- first, then by name.
SELECT
    account_id, region, pipeline, execution_id, kind, name, revision_id,
    revision_change_id, revision_summary, revision_url,
    row_number() OVER (ORDER BY kind DESC, name) AS _order
FROM execution_revisions
SEMI JOIN otel_executions USING (account_id, region, pipeline, execution_id)
