-- `deploy_stages(patterns)` (grain: pipeline): the deploy stages of each pipeline. With
-- patterns (the --deploy-stage GLOBs), every stage whose name matches one of them;
-- without, the stage with the highest stage_index in the pipeline's latest recorded
-- definition (highest pipeline_version in pipeline_actions) that holds an action of
-- category Deploy. A pipeline with no recorded definition has no default deploy stage.
WITH latest AS (
    SELECT account_id, region, pipeline, max(pipeline_version) AS pipeline_version
    FROM {pipeline_actions}
    GROUP BY ALL
)
SELECT a.account_id, a.region, a.pipeline, arg_max(a.stage, a.stage_index) AS stage
FROM {pipeline_actions} AS a
JOIN latest USING (account_id, region, pipeline, pipeline_version)
WHERE a.category = 'Deploy' AND len(CAST(patterns AS VARCHAR[])) = 0
GROUP BY a.account_id, a.region, a.pipeline
UNION ALL
SELECT DISTINCT account_id, region, pipeline, stage
FROM {stage_runs}
WHERE len(CAST(patterns AS VARCHAR[])) > 0 AND glob_any(stage, patterns)
