-- Error codes of failed action executions: failures, pipelines and executions hit, last seen.
-- Over action executions with status Failed whose start is in the window, grouped by error
-- code and provider (NULL code: the service reported none); most frequent first.
SELECT
    error_code,
    provider,
    count(*) AS failures,
    count(DISTINCT pipeline) AS pipelines,
    count(DISTINCT execution_id) AS executions,
    max(start_time) AS last_seen,
    arg_max(error_message, start_time) AS last_message
FROM action_executions
WHERE status = 'Failed'
    AND in_window(start_time, $since, $until)
    AND pipeline_matches(pipeline, $pipelines)
GROUP BY error_code, provider
ORDER BY failures DESC, error_code NULLS LAST, provider;
