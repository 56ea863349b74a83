-- Weekly executions, failures, failure rate, median duration and deployments per pipeline.
-- Weeks start on Monday (UTC). executions, succeeded, failed, failure_rate and p50_s are
-- over the executions that started in the week (and in the window): failure_rate = Failed /
-- (Succeeded + Failed), as in pipeline-summary; p50_s = median duration of the Succeeded
-- ones (last_update_time - start_time), as in pipeline-summary. deployments = STANDARD deployments (see `deployments`; --deploy-stage)
-- whose time falls in the week and in the window.
WITH runs AS (
    SELECT
        pipeline, week, executions, succeeded, failed,
        failure_rate(failed, succeeded) AS failure_rate, p50_s
    FROM weekly_execution_stats($since, $until)
    WHERE pipeline_matches(pipeline, $pipelines)
),
deploys AS (
    SELECT
        pipeline,
        CAST(date_trunc('week', deploy_time AT TIME ZONE 'UTC') AS DATE) AS week,
        count(*) AS deployments
    FROM deployment_log($deploy_stages)
    WHERE NOT "rollback"
        AND in_window(deploy_time, $since, $until)
        AND pipeline_matches(pipeline, $pipelines)
    GROUP BY ALL
)
SELECT
    pipeline,
    week,
    coalesce(r.executions, 0) AS executions,
    coalesce(r.succeeded, 0) AS succeeded,
    coalesce(r.failed, 0) AS failed,
    r.failure_rate,
    r.p50_s,
    coalesce(d.deployments, 0) AS deployments
FROM runs AS r
FULL JOIN deploys AS d USING (pipeline, week)
ORDER BY pipeline, week;
