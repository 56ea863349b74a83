-- Latest state snapshot per pipeline: running executions, disabled transitions, pending approvals.
-- One row per item of the newest snapshot (before --until, if given; --since does not apply):
-- kind 'running' (a stage whose latest execution is InProgress or Stopping), 'disabled' (the
-- stage's inbound transition; detail = reason, by whom) or 'approval' (a pending approval).
-- `since` is when it started (execution start, transition change, approval status change);
-- age_s is measured from `since` to $now.
WITH latest AS (
    SELECT account_id, region, pipeline, max(snapshot_at) AS snapshot_at
    FROM stage_states
    WHERE ($until IS NULL OR snapshot_at < $until)
        AND pipeline_matches(pipeline, $pipelines)
    GROUP BY ALL
),
stages AS (
    SELECT s.*
    FROM stage_states AS s
    JOIN latest USING (account_id, region, pipeline, snapshot_at)
),
approval_actions AS (
    SELECT DISTINCT account_id, region, pipeline, pipeline_version, stage, action
    FROM pipeline_actions
    WHERE category = 'Approval'
),
items AS (
    SELECT
        s.pipeline, s.snapshot_at, 'running' AS kind, s.stage_index AS stage_index, s.stage,
        CAST(NULL AS VARCHAR) AS action, s.latest_execution_id AS execution_id,
        e.start_time AS since, s.latest_execution_status AS detail
    FROM stages AS s
    LEFT JOIN executions AS e
        ON e.account_id = s.account_id AND e.region = s.region AND e.pipeline = s.pipeline
        AND e.execution_id = s.latest_execution_id
    WHERE s.latest_execution_status IN ('InProgress', 'Stopping')
    UNION ALL
    SELECT
        pipeline, snapshot_at, 'disabled', stage_index, stage, NULL, NULL,
        transition_last_changed_at,
        concat_ws(' by ', transition_disabled_reason, transition_last_changed_by)
    FROM stages
    WHERE transition_enabled = false
    UNION ALL
    SELECT
        a.pipeline, a.snapshot_at, 'approval', s.stage_index, a.stage, a.action,
        s.latest_execution_id, a.last_status_change, coalesce(a.summary, 'awaiting approval')
    FROM action_states AS a
    JOIN stages AS s USING (account_id, region, pipeline, snapshot_at, stage)
    LEFT JOIN approval_actions AS d
        ON d.account_id = a.account_id AND d.region = a.region AND d.pipeline = a.pipeline
        AND d.pipeline_version = s.pipeline_version AND d.stage = a.stage
        AND d.action = a.action
    WHERE a.status = 'InProgress' AND (a.token IS NOT NULL OR d.action IS NOT NULL)
)
SELECT
    pipeline,
    kind,
    stage,
    action,
    execution_id,
    since,
    seconds_between(since, CAST($now AS TIMESTAMPTZ)) AS age_s,
    detail,
    snapshot_at
FROM items
ORDER BY pipeline, stage_index NULLS LAST, stage, kind, action;
