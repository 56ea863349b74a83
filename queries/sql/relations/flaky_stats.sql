-- `flaky_stats(since, until)` (grain: name).
-- Action runs (action_runs) whose first start is in the window, per pipeline, stage and
-- action: runs (executions in which the action ran), flaky ones, the first start of the
-- latest flaky one.
SELECT
    pipeline,
    stage,
    action,
    count(*) AS runs,
    count(*) FILTER (WHERE flaky) AS flaky,
    max(first_start) FILTER (WHERE flaky) AS last_flaky
FROM {action_runs}
WHERE in_window(first_start, since, until)
GROUP BY pipeline, stage, action
