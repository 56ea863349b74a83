-- failing-streak: at least `failures` failures in a row of a pipeline (scope "pipeline":
-- its executions with an outcome, Succeeded or Failed, by start time; superseded,
-- stopped and cancelled ones neither break nor extend a streak) or of each of its stages
-- (scope "stage": terminal stage runs Succeeded or Failed). The streak = the outcomes
-- after the last Succeeded one, all Failed; since = the start of its first failure;
-- value = its length. execution_id = its last failure, whose last failed step
-- (failed_executions) the detail names. One alert per streak: it resolves at the next
-- success.
WITH outcomes AS (
    SELECT e.account_id, e.region, e.pipeline, CAST(NULL AS VARCHAR) AS stage,
        e.execution_id, e.status, e.start_time
    FROM executions AS e
    JOIN watch_pipelines AS w USING (account_id, region, pipeline)
    WHERE w.failing_streak_enabled AND w.failing_streak_scope = 'pipeline'
        AND e.status IN ('Succeeded', 'Failed') AND e.start_time < w.clock
    UNION ALL
    SELECT r.account_id, r.region, r.pipeline, r.stage, r.execution_id, r.status, r.start_time
    FROM stage_runs AS r
    JOIN watch_pipelines AS w USING (account_id, region, pipeline)
    WHERE w.failing_streak_enabled AND w.failing_streak_scope = 'stage'
        AND r.terminal AND r.status IN ('Succeeded', 'Failed') AND r.start_time < w.clock
),
ranked AS (
    SELECT *,
        count(*) FILTER (WHERE status = 'Succeeded') OVER (
            PARTITION BY account_id, region, pipeline, stage
            ORDER BY start_time DESC, execution_id DESC
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS successes_after
    FROM outcomes
),
streaks AS (
    SELECT account_id, region, pipeline, stage,
        count(*) AS failures,
        min(start_time) AS since,
        arg_max(execution_id, row(start_time, execution_id)) AS execution_id
    FROM ranked
    WHERE successes_after = 0
    GROUP BY ALL
)
SELECT
    'failing-streak' AS rule,
    s.account_id, s.region, s.pipeline,
    coalesce(s.stage, f.stage) AS stage,
    f.action,
    s.execution_id,
    coalesce(s.stage, '') AS subject,
    s.since,
    seconds_between(s.since, w.clock) AS age_s,
    s.failures AS value,
    w.failing_streak_failures AS threshold,
    nullif(concat_ws(': ', f.error_code, f.error_message), '') AS detail,
    w.failing_streak_repeat_hours * 3600 AS repeat_s,
    w.clock
FROM streaks AS s
JOIN watch_pipelines AS w USING (account_id, region, pipeline)
LEFT JOIN failed_executions AS f USING (account_id, region, pipeline, execution_id)
WHERE s.failures >= w.failing_streak_failures
