-- What got slower: stages whose median this week is at least 1.25x the 4 weeks before.
-- Terminal stage runs by start: recent = the 7 days before --until (or now), baseline =
-- the 28 days before those (--since does not apply). Per pipeline and stage:
-- recent_p50_s and baseline_p50_s (quantile_cont), ratio = recent / baseline, the runs on
-- each side, and new_versions = pipeline versions used by executions started in the
-- recent days and by none started in the baseline days (sorted, joined by ', '; NULL:
-- none). Only rows with ratio >= 1.25, at least 5 runs on each side and a baseline p50
-- above 0 (no ratio to a zero), worst first.
WITH bounds AS (
    SELECT
        coalesce(CAST($until AS TIMESTAMPTZ), CAST($now AS TIMESTAMPTZ)) AS recent_end,
        recent_end - INTERVAL 7 DAY AS recent_start,
        recent_start - INTERVAL 28 DAY AS baseline_start
),
runs AS (
    SELECT r.pipeline, r.stage, r.duration_s, r.start_time >= b.recent_start AS recent
    FROM stage_runs AS r, bounds AS b
    WHERE r.terminal
        AND r.start_time >= b.baseline_start AND r.start_time < b.recent_end
        AND pipeline_matches(r.pipeline, $pipelines)
),
per_stage AS (
    SELECT
        pipeline,
        stage,
        quantile_cont(duration_s, 0.5) FILTER (WHERE recent) AS recent_p50_s,
        quantile_cont(duration_s, 0.5) FILTER (WHERE NOT recent) AS baseline_p50_s,
        count(*) FILTER (WHERE recent) AS recent_runs,
        count(*) FILTER (WHERE NOT recent) AS baseline_runs
    FROM runs
    GROUP BY pipeline, stage
),
versions AS (
    SELECT
        e.pipeline,
        list_sort(list(DISTINCT e.pipeline_version) FILTER (
            WHERE e.start_time >= b.recent_start AND e.pipeline_version IS NOT NULL
        )) AS recent,
        list(DISTINCT e.pipeline_version) FILTER (WHERE e.start_time < b.recent_start)
            AS baseline
    FROM executions AS e, bounds AS b
    WHERE e.start_time >= b.baseline_start AND e.start_time < b.recent_end
        AND pipeline_matches(e.pipeline, $pipelines)
    GROUP BY e.pipeline
)
SELECT
    s.pipeline,
    s.stage,
    s.recent_p50_s,
    s.baseline_p50_s,
    s.recent_p50_s / s.baseline_p50_s AS ratio,
    s.recent_runs,
    s.baseline_runs,
    nullif(array_to_string(
        list_filter(v.recent, lambda x: NOT list_contains(coalesce(v.baseline, []), x)), ', '
    ), '') AS new_versions
FROM per_stage AS s
LEFT JOIN versions AS v USING (pipeline)
WHERE s.recent_runs >= 5 AND s.baseline_runs >= 5
    AND s.baseline_p50_s > 0
    AND s.recent_p50_s / s.baseline_p50_s >= 1.25
ORDER BY ratio DESC, s.pipeline, s.stage;
