-- The recorded clock of every pipeline cprec watch evaluates: ages are measured to it, not
-- to the wall clock, so that a watch over a root the collector has not updated for a day
-- does not see every execution "stuck" for a day, and the same root gives the same alerts.
-- clock = the start of the latest collection run (succeeded or partial) of the pipeline's
-- account and region that did not fail on the pipeline (as current-state's checked_at):
-- the last moment its recorded state is known to be the state AWS showed. A pipeline
-- never collected by a run (only hand-written rows) has no clock and is not evaluated.
WITH pipelines AS (
    SELECT DISTINCT account_id, region, pipeline FROM executions
    UNION
    SELECT DISTINCT account_id, region, pipeline FROM stage_states
)
SELECT p.account_id, p.region, p.pipeline, max(c.started_at) AS clock
FROM pipelines AS p
JOIN collection_runs AS c
    ON c.account_id = p.account_id AND c.region = p.region
    AND c.status IN ('succeeded', 'partial')
    AND NOT list_contains(
        list_transform(
            coalesce(from_json(c.errors_json, '[{"pipeline": "VARCHAR"}]'), []),
            lambda x: x.pipeline
        ),
        p.pipeline
    )
GROUP BY ALL
ORDER BY ALL
