-- What the pipelines cost at AWS's prices: minutes billed, and what failures and retries cost.
-- (--by pipeline, stage, action, account or month.)
-- Every rule of the bill, with where AWS states it, is in sql/_library.sql (aws_prices
-- and the macros after it): V2 pipelines pay per action execution minute, each action
-- execution rounded up to the minute, manual approvals and custom actions free, 100 free
-- minutes per account and month; V1 pipelines pay per active pipeline and month, one free
-- per account and month. --prices FILE and --price-per-minute replace AWS's prices.
--
-- One row per --by group: pipeline (the default: account_id, region, pipeline,
-- pipeline_type; a pipeline changed from V1 to V2 has a row for each), stage and action
-- (the same, with the stage and action; a V1 pipeline's monthly charges are on its
-- row with no stage and action), account (account_id), month (UTC calendar month).
--   action_executions  action executions that ended (every type, billed or not)
--   minutes            their exact minutes, of those billed per minute (V2)
--   billable_minutes   the same, each rounded up to the minute
--   free_minutes       the part of billable_minutes the account's free minutes paid
--   active_months      V1: months a pipeline was active; free_months those free
--   cost               (billable_minutes - free_minutes) x the price per minute
--                      + (active_months - free_months) x the price per pipeline month;
--                      NULL when a pipeline's type is unknown (no recorded definition)
--   failed_cost, superseded_cost, stopped_cost  the part of cost spent on action
--                      executions of executions that ended Failed, Superseded, Stopped
--   retried_cost       the part spent on action executions that a retry replaced (a
--                      later attempt of the same action in the same execution)
-- Free minutes are shared over every recorded pipeline of the account in the month,
-- whatever the selection: --since/--until select the action executions that ended in
-- the window (and the V1 months whose first qualifying execution started in it), and
-- --pipeline, --account and --region the rows, after the free minutes are allotted.
WITH actions AS (
    SELECT
        account_id, region, pipeline, pipeline_type, stage, action, month,
        1 AS action_executions,
        CASE WHEN per_minute THEN minutes END AS minutes,
        billable_minutes, free_minutes,
        0 AS active_months, 0 AS free_months,
        cost, execution_status, retried
    FROM action_costs($prices)
    WHERE in_window(end_time, $since, $until)
),
months AS (
    SELECT
        account_id, region, pipeline, 'V1' AS pipeline_type,
        NULL AS stage, NULL AS action, month,
        0 AS action_executions, NULL AS minutes, 0 AS billable_minutes, 0 AS free_minutes,
        1 AS active_months, CAST(free AS INTEGER) AS free_months,
        cost, NULL AS execution_status, false AS retried
    FROM pipeline_month_costs($prices)
    WHERE in_window(first_active, $since, $until)
),
selected AS (
    SELECT * FROM actions
    UNION ALL
    SELECT * FROM months
),
grouped AS (
    SELECT
        CASE WHEN $by <> 'month' THEN account_id END AS account_id,
        CASE WHEN $by IN ('pipeline', 'stage', 'action') THEN region END AS region,
        CASE WHEN $by IN ('pipeline', 'stage', 'action') THEN pipeline END AS pipeline,
        CASE WHEN $by IN ('pipeline', 'stage', 'action') THEN pipeline_type END
            AS pipeline_type,
        CASE WHEN $by IN ('stage', 'action') THEN stage END AS stage,
        CASE WHEN $by = 'action' THEN action END AS action,
        CASE WHEN $by = 'month' THEN month END AS month,
        CAST(sum(action_executions) AS BIGINT) AS action_executions,
        -- a figure over a row of unknown cost (a pipeline without a type) is unknown
        bool_and(cost IS NOT NULL) AS known,
        CASE WHEN known THEN coalesce(sum_exact(minutes), 0) END AS minutes,
        CASE WHEN known THEN CAST(sum(billable_minutes) AS BIGINT) END AS billable_minutes,
        CASE WHEN known THEN CAST(sum(free_minutes) AS BIGINT) END AS free_minutes,
        CAST(sum(active_months) AS BIGINT) AS active_months,
        CAST(sum(free_months) AS BIGINT) AS free_months,
        CASE WHEN known THEN CAST(sum(cost) AS DOUBLE) END AS cost,
        CASE WHEN known THEN
            CAST(coalesce(sum(cost) FILTER (WHERE execution_status = 'Failed'), 0) AS DOUBLE)
        END AS failed_cost,
        CASE WHEN known THEN
            CAST(coalesce(sum(cost) FILTER (WHERE execution_status = 'Superseded'), 0) AS DOUBLE)
        END AS superseded_cost,
        CASE WHEN known THEN
            CAST(coalesce(sum(cost) FILTER (WHERE execution_status = 'Stopped'), 0) AS DOUBLE)
        END AS stopped_cost,
        CASE WHEN known THEN
            CAST(coalesce(sum(cost) FILTER (WHERE retried), 0) AS DOUBLE)
        END AS retried_cost
    FROM selected
    WHERE pipeline_matches(pipeline, $pipelines)
        AND (len($accounts) = 0 OR glob_any(account_id, $accounts))
        AND (len($regions) = 0 OR glob_any(region, $regions))
    GROUP BY ALL
)
-- the --by group's columns, and every figure
SELECT COLUMNS(lambda c: list_contains(
    CASE $by
        WHEN 'pipeline' THEN ['account_id', 'region', 'pipeline', 'pipeline_type']
        WHEN 'stage' THEN ['account_id', 'region', 'pipeline', 'pipeline_type', 'stage']
        WHEN 'action' THEN ['account_id', 'region', 'pipeline', 'pipeline_type', 'stage',
            'action']
        WHEN 'account' THEN ['account_id']
        WHEN 'month' THEN ['month']
    END,
    c
) OR c NOT IN ('account_id', 'region', 'pipeline', 'pipeline_type', 'stage', 'action', 'month',
    'known'))
FROM grouped
ORDER BY month, cost DESC NULLS FIRST, account_id, region, pipeline, pipeline_type,
    stage NULLS FIRST, action NULLS FIRST;
