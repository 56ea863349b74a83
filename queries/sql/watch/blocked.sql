-- blocked: a stage's inbound transition disabled for at least `hours`, in the pipeline's
-- newest state snapshot; since = when the transition last changed (the snapshot's time
-- if not recorded); detail = the reason and who disabled it. One alert per stage.
WITH latest AS (
    SELECT account_id, region, pipeline, max(snapshot_at) AS snapshot_at
    FROM stage_states
    GROUP BY ALL
),
disabled AS (
    SELECT s.account_id, s.region, s.pipeline, s.stage,
        coalesce(s.transition_last_changed_at, s.snapshot_at) AS since,
        concat_ws(' by ', coalesce(s.transition_disabled_reason, 'no reason given'),
            s.transition_last_changed_by) AS detail
    FROM stage_states AS s
    JOIN latest USING (account_id, region, pipeline, snapshot_at)
    WHERE s.transition_enabled = false
)
SELECT
    'blocked' AS rule,
    d.account_id, d.region, d.pipeline, d.stage,
    CAST(NULL AS VARCHAR) AS action,
    CAST(NULL AS VARCHAR) AS execution_id,
    d.stage AS subject,
    d.since,
    seconds_between(d.since, w.clock) AS age_s,
    seconds_between(d.since, w.clock) AS value,
    w.blocked_hours * 3600 AS threshold,
    d.detail,
    w.blocked_repeat_hours * 3600 AS repeat_s,
    w.clock
FROM disabled AS d
JOIN watch_pipelines AS w USING (account_id, region, pipeline)
WHERE w.blocked_enabled AND seconds_between(d.since, w.clock) >= w.blocked_hours * 3600
