-- Time to restore per pipeline: failure episodes and how long until the next deployment.
-- A failure is a Failed deployment attempt of a STANDARD execution (at its stage run's
-- end) or a rolled-back deployment (at the start of the ROLLBACK execution; see
-- `change-failure-rate`). A failure opens an episode unless one is open; the next
-- deployment (STANDARD or ROLLBACK) before --until (or now) closes it. Counted when the
-- failure's time is in the window: failures; episodes opened; restored (closed);
-- p50_restore_s (quantile_cont) and max_restore_s over the restored episodes (deployment
-- time - the opening failure's time); unrestored = episodes still open at --until/now.
SELECT
    pipeline,
    count(*) AS failures,
    count(*) FILTER (WHERE opens) AS episodes,
    count(*) FILTER (WHERE opens AND restored_at IS NOT NULL) AS restored,
    quantile_cont(seconds_between(opened_at, restored_at), 0.5) FILTER (WHERE opens)
        AS p50_restore_s,
    max(seconds_between(opened_at, restored_at)) FILTER (WHERE opens) AS max_restore_s,
    count(*) FILTER (WHERE opens AND restored_at IS NULL) AS unrestored
FROM deploy_failures($deploy_stages, $until, $now)
WHERE in_window(failed_at, $since, $until)
    AND pipeline_matches(pipeline, $pipelines)
GROUP BY pipeline
ORDER BY pipeline;
