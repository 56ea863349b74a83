-- Lead time for changes per pipeline: earliest revision commit to deployment, p50/p90/mean.
-- Over the deployments (see `deployments`) of STANDARD executions in the window whose
-- execution has artifact revisions with a `created` time; without_created counts the
-- others. lead time = deployment time - the earliest `created`, in two parts:
-- to_start_s (execution start - earliest created) and in_pipeline_s (deployment time -
-- execution start); both columns are medians. Percentiles are quantile_cont.
WITH leads AS (
    SELECT *
    FROM lead_times($deploy_stages)
    WHERE in_window(deploy_time, $since, $until)
        AND pipeline_matches(pipeline, $pipelines)
)
SELECT
    pipeline,
    count(lead_s) AS deployments,
    count(*) - count(lead_s) AS without_created,
    quantile_cont(lead_s, 0.5) AS p50_lead_time_s,
    quantile_cont(lead_s, 0.9) AS p90_lead_time_s,
    mean_exact(lead_s) AS mean_lead_time_s,
    quantile_cont(to_start_s, 0.5) AS to_start_s,
    quantile_cont(in_pipeline_s, 0.5) AS in_pipeline_s
FROM leads
GROUP BY pipeline
ORDER BY pipeline;
