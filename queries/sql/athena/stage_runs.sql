-- `stage_runs` for Athena (Trino SQL; recorder/athena.py): the rules of
-- relations/stage_runs.sql,
-- which is DuckDB SQL. Athena has no GROUP BY ALL and no macros (seconds_between is
-- inlined), and its max_by over a ROW key may refuse a key whose fields are NULL, so
-- the latest execution of each action is ranked by a window instead. DuckDB orders
-- a NULL field of a ROW above any value: hence DESC NULLS FIRST, the same pick.
-- Its timestamps read from Parquet are milliseconds, so the difference is too.
-- after_stage and wait_s as there (the window spelled out: no WINDOW clause).
-- `$database` is the Athena database; the statement holds no blank line.
WITH ranked AS (
    SELECT
        account_id, region, pipeline, execution_id, stage, action, status,
        start_time, last_update_time,
        row_number() OVER (
            PARTITION BY account_id, region, pipeline, execution_id, stage, action
            ORDER BY start_time DESC NULLS FIRST, last_update_time DESC NULLS FIRST,
                     action_execution_id DESC NULLS FIRST
        ) AS recency
    FROM "$database"."action_executions"
), per_action AS (
    SELECT
        account_id, region, pipeline, execution_id, stage, action,
        count(*) AS runs,
        max(status) FILTER (WHERE recency = 1) AS latest_status,
        count(*) FILTER (WHERE status = 'InProgress') AS in_progress,
        min(start_time) AS start_time,
        max(last_update_time) AS end_time
    FROM ranked
    GROUP BY account_id, region, pipeline, execution_id, stage, action
), runs AS (
    SELECT
        account_id,
        region,
        pipeline,
        execution_id,
        stage,
        min(start_time) AS start_time,
        max(end_time) AS end_time,
        date_diff('millisecond', min(start_time), max(end_time)) / 1e3 AS duration_s,
        CASE
            WHEN sum(in_progress) > 0 THEN 'InProgress'
            WHEN bool_or(latest_status = 'Failed') THEN 'Failed'
            WHEN bool_or(latest_status = 'Abandoned') THEN 'Abandoned'
            ELSE 'Succeeded'
        END AS action_status,
        max(runs) AS attempts,
        sum(in_progress) = 0 AS terminal,
        count(*) AS actions,
        CAST(sum(runs) AS BIGINT) AS action_executions
    FROM per_action
    GROUP BY account_id, region, pipeline, execution_id, stage
), ranked_rules AS (
    SELECT
        account_id, region, pipeline, execution_id, stage, rule, status, start_time,
        row_number() OVER (
            PARTITION BY account_id, region, pipeline, execution_id, stage, rule
            ORDER BY start_time DESC NULLS FIRST, last_update_time DESC NULLS FIRST,
                     rule_execution_id DESC NULLS FIRST
        ) AS recency
    FROM "$database"."rule_executions"
), rules AS (
    SELECT
        account_id, region, pipeline, execution_id, stage, rule,
        max(status) FILTER (WHERE recency = 1) AS latest_status,
        max(start_time) AS latest_start
    FROM ranked_rules
    GROUP BY account_id, region, pipeline, execution_id, stage, rule
), conditions AS (
    SELECT
        account_id, region, pipeline, execution_id, stage,
        max(latest_start) FILTER (WHERE latest_status = 'Failed') AS failed_start,
        max(latest_start) FILTER (WHERE latest_status = 'InProgress') AS running_start
    FROM rules
    GROUP BY account_id, region, pipeline, execution_id, stage
)
SELECT
    r.account_id, r.region, r.pipeline, r.execution_id, r.stage,
    r.start_time, r.end_time, r.duration_s,
    CASE
        WHEN r.action_status = 'InProgress' OR c.running_start >= r.start_time THEN 'InProgress'
        WHEN r.action_status = 'Failed' OR c.failed_start >= r.start_time THEN 'Failed'
        ELSE r.action_status
    END AS status,
    r.attempts,
    r.terminal AND NOT coalesce(c.running_start >= r.start_time, false) AS terminal,
    r.actions, r.action_executions,
    lag(r.stage) OVER (
        PARTITION BY r.account_id, r.region, r.pipeline, r.execution_id
        ORDER BY r.start_time, r.stage
    ) AS after_stage,
    date_diff('millisecond', coalesce(lag(r.end_time) OVER (
        PARTITION BY r.account_id, r.region, r.pipeline, r.execution_id
        ORDER BY r.start_time, r.stage
    ), e.start_time), r.start_time) / 1e3 AS wait_s
FROM runs AS r
LEFT JOIN conditions AS c
    ON c.account_id = r.account_id AND c.region = r.region AND c.pipeline = r.pipeline
    AND c.execution_id = r.execution_id AND c.stage = r.stage
LEFT JOIN "$database"."executions" AS e
    ON e.account_id = r.account_id AND e.region = r.region AND e.pipeline = r.pipeline
    AND e.execution_id = r.execution_id
