-- Scalar macros every relation and named query may call, created first (recorder/derive.py).
-- Files whose name starts with `_` are not named queries.

-- Time window on a start time: NULL bounds are open, `until` is exclusive.
CREATE OR REPLACE MACRO in_window(t, since, until) AS
    (since IS NULL OR t >= since) AND (until IS NULL OR t < until);

-- `patterns` is a list of GLOB patterns: true when `v` matches one of them.
CREATE OR REPLACE MACRO glob_any(v, patterns) AS
    len(list_filter(CAST(patterns AS VARCHAR[]), lambda g: v GLOB g)) > 0;

-- An empty list of patterns matches every pipeline.
CREATE OR REPLACE MACRO pipeline_matches(p, patterns) AS
    len(CAST(patterns AS VARCHAR[])) = 0 OR glob_any(p, patterns);

-- (execution_terminal(status) and action_terminal(status), the statuses that end a
-- pipeline execution and an action execution, are made from recorder/schemas.py.)

-- The failure rate of executions, of stage runs or of action executions: Failed / (Succeeded +
-- Failed). What never reached an outcome (Superseded, Stopped, Cancelled, Abandoned, still
-- running) does not dilute it. NULL without an outcome.
CREATE OR REPLACE MACRO failure_rate(failed, succeeded) AS
    failed / nullif(failed + succeeded, 0);

-- The change failure rate (DORA): (failed + rolled back) deployment attempts / attempts.
-- NULL without an attempt.
CREATE OR REPLACE MACRO change_failure_rate(failed, rolled_back, attempts) AS
    (failed + rolled_back) / nullif(attempts, 0);

-- Seconds between two timestamps, exact to the microsecond.
CREATE OR REPLACE MACRO seconds_between(a, b) AS
    (epoch_us(b) - epoch_us(a)) / 1e6;

-- The mean of seconds exact to the microsecond, summed as DECIMAL: a sum of doubles
-- depends on the order DuckDB's threads add them, so its last digits would change
-- from run to run on the same data.
CREATE OR REPLACE MACRO mean_exact(x) AS
    CAST(avg(CAST(x AS DECIMAL(18, 6))) AS DOUBLE);

-- The sum of seconds exact to the microsecond (as mean_exact).
CREATE OR REPLACE MACRO sum_exact(x) AS
    CAST(sum(CAST(x AS DECIMAL(18, 6))) AS DOUBLE);
