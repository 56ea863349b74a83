-- Latest state per pipeline: running, blocked and queued executions, disabled transitions, approvals.
-- One row per item of the newest snapshot (before --until, if given; --since does not apply):
--   running   a stage whose latest execution is InProgress or Stopping; since = the start of
--             that execution's run of the stage (the execution's start if none is recorded)
--   blocked   an execution held at the stage's disabled inbound transition; since = the end
--             of its last recorded stage run (its start if none), detail = the reason
--   queued    an execution waiting to enter the stage while the transition is enabled (a
--             QUEUED or PARALLEL pipeline's inbound executions); since as for blocked
--   disabled  the stage's inbound transition; since = when it changed, detail = reason, by whom
--   approval  a pending approval; since = its last status change
-- age_s is measured from `since` to $now (cprec query passes the recorded clock: the start
-- of the last collection run, so an age is as of the latest recording, whatever the wall
-- clock says). snapshot_at is when the state last changed (an unchanged state is not
-- recorded again); checked_age_s is measured from the start of the last collection run of
-- the pipeline's account and region that did not fail on it, started by $now (or from
-- snapshot_at if later) to $now: how far this pipeline's state is behind the latest run.
WITH latest AS (
    SELECT account_id, region, pipeline, max(snapshot_at) AS snapshot_at
    FROM stage_states
    WHERE ($until IS NULL OR snapshot_at < $until)
        AND pipeline_matches(pipeline, $pipelines)
    GROUP BY ALL
),
checked AS (
    SELECT
        l.account_id, l.region, l.pipeline,
        greatest(l.snapshot_at, max(c.started_at)) AS checked_at
    FROM latest AS l
    LEFT JOIN collection_runs AS c
        ON c.account_id = l.account_id AND c.region = l.region
        AND c.status IN ('succeeded', 'partial')
        AND ($until IS NULL OR c.started_at < $until)
        AND c.started_at <= CAST($now AS TIMESTAMPTZ)
        AND NOT list_contains(
            list_transform(
                coalesce(from_json(c.errors_json, '[{"pipeline": "VARCHAR"}]'), []),
                lambda x: x.pipeline
            ),
            l.pipeline
        )
    GROUP BY l.account_id, l.region, l.pipeline, l.snapshot_at
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
inbound AS (
    -- inboundExecution and the entries of inboundExecutions (the same execution may be both)
    SELECT DISTINCT account_id, region, pipeline, snapshot_at, stage, stage_index,
        transition_enabled, transition_disabled_reason, execution_id
    FROM (
        SELECT *, inbound_execution_id AS execution_id, inbound_execution_status AS status
        FROM stages
        UNION ALL BY NAME
        SELECT s.*, i.e.pipelineExecutionId AS execution_id, i.e.status AS status
        FROM stages AS s,
            unnest(from_json(
                s.inbound_executions_json,
                '[{"pipelineExecutionId": "VARCHAR", "status": "VARCHAR"}]'
            )) AS i(e)
    )
    WHERE execution_id IS NOT NULL AND coalesce(status, 'InProgress') = 'InProgress'
),
last_stage_end AS (
    SELECT account_id, region, pipeline, execution_id, max(end_time) AS end_time
    FROM stage_runs
    SEMI JOIN inbound USING (account_id, region, pipeline, execution_id)
    GROUP BY ALL
),
running_runs AS (
    SELECT r.account_id, r.region, r.pipeline, r.execution_id, r.stage, r.start_time
    FROM stage_runs AS r
    SEMI JOIN stages AS s
        ON r.account_id = s.account_id AND r.region = s.region AND r.pipeline = s.pipeline
        AND r.execution_id = s.latest_execution_id AND r.stage = s.stage
        AND s.latest_execution_status IN ('InProgress', 'Stopping')
),
items AS (
    SELECT
        s.pipeline, s.snapshot_at, 'running' AS kind, s.stage_index AS stage_index, s.stage,
        CAST(NULL AS VARCHAR) AS action, s.latest_execution_id AS execution_id,
        coalesce(r.start_time, e.start_time) AS since, s.latest_execution_status AS detail
    FROM stages AS s
    LEFT JOIN executions AS e
        ON e.account_id = s.account_id AND e.region = s.region AND e.pipeline = s.pipeline
        AND e.execution_id = s.latest_execution_id
    LEFT JOIN running_runs AS r
        ON r.account_id = s.account_id AND r.region = s.region AND r.pipeline = s.pipeline
        AND r.execution_id = s.latest_execution_id AND r.stage = s.stage
    WHERE s.latest_execution_status IN ('InProgress', 'Stopping')
    UNION ALL
    SELECT
        i.pipeline, i.snapshot_at,
        CASE WHEN i.transition_enabled = false THEN 'blocked' ELSE 'queued' END,
        i.stage_index, i.stage, NULL, i.execution_id,
        coalesce(l.end_time, e.start_time),
        CASE
            WHEN i.transition_enabled = false
                THEN coalesce(i.transition_disabled_reason, 'transition disabled')
            ELSE 'waiting to enter the stage'
        END
    FROM inbound AS i
    LEFT JOIN last_stage_end AS l USING (account_id, region, pipeline, execution_id)
    LEFT JOIN executions AS e USING (account_id, region, pipeline, execution_id)
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
    i.pipeline,
    i.kind,
    i.stage,
    i.action,
    i.execution_id,
    i.since,
    seconds_between(i.since, CAST($now AS TIMESTAMPTZ)) AS age_s,
    i.detail,
    i.snapshot_at,
    seconds_between(c.checked_at, CAST($now AS TIMESTAMPTZ)) AS checked_age_s
FROM items AS i
JOIN checked AS c USING (pipeline)
ORDER BY i.pipeline, i.stage_index NULLS LAST, i.stage, i.kind, i.action, i.execution_id;
