-- Collector runs, newest first: status, duration, API calls, throttles, retries, errors.
-- Runs whose start is in the window (--pipeline does not apply: a run covers an account and
-- region). errors = entries in errors_json; first_error = the first one, "pipeline: error".
SELECT
    started_at,
    region,
    status,
    seconds_between(started_at, finished_at) AS duration_s,
    pipelines_recorded,
    pipelines_failed,
    api_calls,
    throttles,
    retries,
    CAST(json_array_length(errors_json) AS BIGINT) AS errors,
    nullif(concat_ws(': ', json_extract_string(errors_json, '$[0].pipeline'),
        json_extract_string(errors_json, '$[0].error')), '') AS first_error,
    account_id,
    run_id
FROM collection_runs
WHERE in_window(started_at, $since, $until)
ORDER BY started_at DESC, account_id, region;
