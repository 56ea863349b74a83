-- `cprec export otel`: the terminal executions left to send (held as the temporary table
-- otel_executions for the batches, next.sql). An execution is sent once it is terminal
-- (its last row is the one that ended it), in the order of that row's recorded_at (the
-- start of the collection run that recorded it ended), then account, region, pipeline
-- and execution id. The export cursor is the last of these it sent ($after_*; NULL:
-- from the beginning); $bound is the latest recorded_at when the export began, read
-- while no collector wrote (rows recorded later are left to the next export).
-- $since/$until apply to the start time.
SELECT
    account_id, region, pipeline, execution_id, status, status_summary,
    start_time, last_update_time AS end_time, pipeline_version, trigger_type,
    trigger_detail, execution_mode, execution_type, rollback_target_execution_id,
    stop_trigger_reason, recorded_at
FROM executions
WHERE execution_terminal(status)
    AND recorded_at <= $bound
    AND start_time IS NOT NULL AND last_update_time IS NOT NULL
    AND in_window(start_time, $since, $until)
    AND pipeline_matches(pipeline, $pipelines)
    AND (
        $after_recorded_at IS NULL
        OR row(recorded_at, account_id, region, pipeline, execution_id)
            > row($after_recorded_at, $after_account_id, $after_region, $after_pipeline,
                  $after_execution_id)
    )
