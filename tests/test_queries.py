"""The query layer against the hand-built data root of conftest.build_scenario (its
docstring draws the scenario): every figure computed by hand."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import (
    ACCOUNT,
    REGION,
    action_row,
    build_scenario,
    common_columns,
    execution_row,
    query_rows,
    t,
    write_old_schema_files,
)
from conftest import SCENARIO_NOW as NOW

import queries
from recorder.cache import refresh
from recorder.errors import UserError
from recorder.schemas import TABLES
from recorder.store import write_rows


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    return build_scenario(tmp_path_factory.mktemp("scenario"))


@pytest.fixture(scope="module")
def con(scenario) -> duckdb.DuckDBPyConnection:
    return queries.connect(scenario)


def rows(con, name, **kw) -> list[tuple]:
    return query_rows(con, name, **{"now": NOW, **kw})


def columns(con, name) -> list[str]:
    return queries.run_query(con, name, now=NOW).column_names


# --- views --------------------------------------------------------------------------------


def test_views_keep_the_latest_recording_per_key(con):
    e4 = con.sql("SELECT status FROM executions WHERE execution_id = 'E4'").fetchall()
    assert e4 == [("Failed",)]
    assert con.sql("SELECT count(*) FROM raw.executions").fetchall() == [(9,)]
    assert con.sql("SELECT count(*) FROM executions").fetchall() == [(8,)]
    assert con.sql("SELECT count(*) FROM collection_runs").fetchall() == [(2,)]


def test_stage_runs(con):
    got = con.sql(
        "SELECT execution_id, stage, duration_s, status, attempts, terminal FROM stage_runs "
        "WHERE pipeline = 'web' ORDER BY execution_id, start_time"
    ).fetchall()
    assert got == [
        ("E1", "Source", 30.0, "Succeeded", 1, True),
        ("E1", "Build", 260.0, "Succeeded", 1, True),
        ("E1", "Deploy", 290.0, "Succeeded", 1, True),
        ("E2", "Source", 20.0, "Succeeded", 1, True),
        ("E2", "Build", 810.0, "Succeeded", 2, True),
        ("E2", "Deploy", 350.0, "Succeeded", 1, True),
        ("E3", "Source", 40.0, "Succeeded", 1, True),
        ("E3", "Build", 240.0, "Succeeded", 1, True),
        ("E3", "Deploy", 3600.0, "Abandoned", 1, True),
        ("E4", "Source", 30.0, "Succeeded", 1, True),
        ("E4", "Build", 180.0, "Failed", 1, True),
        ("E5", "Source", 25.0, "Succeeded", 1, True),
        ("E5", "Build", 25.0, "InProgress", 1, False),
    ]


def test_view_columns_are_canonical(con):
    for name, table in TABLES.items():
        extra = ["pipeline", "dt"] if table.per_pipeline else ["dt"]
        assert con.sql(f"SELECT * FROM {name}").columns == table.columns + extra


# --- named queries: exact figures ----------------------------------------------------------


def test_stage_durations(con):
    assert columns(con, "stage-durations") == [
        "pipeline", "stage", "runs", "p50_s", "p90_s", "p95_s", "max_s", "mean_s",
    ]  # fmt: skip
    assert rows(con, "stage-durations") == [
        # one run, 100 and 200: p50 = 150, p90 = 100 + 0.9*100, p95 = 100 + 0.95*100
        ("api", "Build", 2, 150.0, 190.0, 195.0, 200.0, 150.0),
        # 30 only (O1's Deploy is still waiting on its approval: not terminal)
        ("ops", "Source", 1, 30.0, 30.0, 30.0, 30.0, 30.0),
        # sorted 20 25 30 30 40; p50 at index 2 = 30; p90 at 3.6 = 30 + 0.6*10 = 36;
        # p95 at 3.8 = 30 + 0.8*10 = 38; mean 145/5 = 29
        ("web", "Source", 5, 30.0, 36.0, 38.0, 40.0, 29.0),
        # E5 excluded (InProgress); sorted 180 240 260 810; p50 at 1.5 = 250;
        # p90 at 2.7 = 260 + 0.7*550 = 645; p95 at 2.85 = 260 + 0.85*550 = 727.5; mean 1490/4
        ("web", "Build", 4, 250.0, 645.0, 727.5, 810.0, 372.5),
        # sorted 290 350 3600; p50 = 350; p90 at 1.8 = 350 + 0.8*3250 = 2950;
        # p95 at 1.9 = 350 + 0.9*3250 = 3275; mean 4240/3
        ("web", "Deploy", 3, 350.0, 2950.0, 3275.0, 3600.0, round(4240 / 3, 9)),
    ]


def test_stage_durations_window_and_pipeline_glob(con):
    since, until = t("00:00:00", 6), t("00:00:00", 13)
    assert rows(con, "stage-durations", since=since, until=until, pipelines=["a*", "zz"]) == [
        ("api", "Build", 1, 100.0, 100.0, 100.0, 100.0, 100.0),  # A2 starts at until: excluded
    ]
    got = rows(con, "stage-durations", until=t("12:00:00"), pipelines=["web"])
    # E1, E2 only: Source 30, 20; Build 260, 810; Deploy 290, 350
    assert [(r[1], r[2], r[3]) for r in got] == [
        ("Source", 2, 25.0),
        ("Build", 2, 535.0),
        ("Deploy", 2, 320.0),
    ]


def test_action_durations(con):
    got = rows(con, "action-durations", pipelines=["web"])
    # Compile's terminal attempts 260, 120, 240, 240, 180 -> sorted 120 180 240 240 260;
    # p50 = 240; p90 at 3.6 = 240 + 0.6*20 = 252; p95 at 3.8 = 256; mean 1040/5 = 208
    assert ("web", "Build", "Compile", 5, 240.0, 252.0, 256.0, 260.0, 208.0) in got
    # Approve 180, 120, 3600 (the Abandoned one is terminal) -> p50 180
    assert ("web", "Deploy", "Approve", 3, 180.0, 2916.0, 3258.0, 3600.0, 1300.0) in got
    assert len(got) == 4


def test_failure_rates(con):
    assert columns(con, "failure-rates") == [
        "pipeline", "stage", "action", "attempts", "succeeded", "failed", "failure_rate",
    ]  # fmt: skip
    # failure_rate = Failed / (Succeeded + Failed), as for executions
    assert rows(con, "failure-rates") == [
        ("api", "Build", "Compile", 2, 2, 0, 0.0),
        ("ops", "Source", "Checkout", 1, 1, 0, 0.0),  # the pending approval is not terminal
        ("web", "Source", "Checkout", 5, 5, 0, 0.0),
        # E1 S, E2 F, E2 S (retry), E3 S, E4 F; E5 InProgress excluded -> 2 / (3 + 2)
        ("web", "Build", "Compile", 5, 3, 2, 0.4),
        # E1 S, E2 S, E3 Abandoned: an attempt, not an outcome -> 0 / (2 + 0)
        ("web", "Deploy", "Approve", 3, 2, 0, 0.0),
        ("web", "Deploy", "Release", 2, 2, 0, 0.0),
    ]


def test_pipeline_summary(con):
    # columns: executions, succeeded, failed, superseded, stopped, running, failure_rate,
    # superseded_rate, p50_s, p90_s
    assert rows(con, "pipeline-summary") == [
        # durations 120, 240 -> median 180, p90 120 + 0.9 * 120 = 228; 0 Failed / (2 + 0)
        ("api", 2, 2, 0, 0, 0, 0, 0.0, 0.0, 180.0, 228.0),
        # nothing terminal: no rate, no median
        ("ops", 1, 0, 0, 0, 0, 1, None, None, None, None),
        # E1 S, E2 S, E3 Stopped, E4 F, E5 running: failure 1 / (2 + 1); superseded 0 / 4
        # terminal; the Succeeded took 600, 1200 -> median 900, p90 600 + 0.9 * 600 = 1140
        ("web", 5, 2, 1, 0, 1, 1, round(1 / 3, 9), 0.0, 900.0, 1140.0),
    ]


def test_pipeline_summary_superseded_runs_do_not_dilute_the_failure_rate(tmp_path):
    statuses = ["Succeeded"] * 3 + ["Failed"] * 2 + ["Superseded"] * 4 + ["Stopped"]
    write_rows(tmp_path, "executions", [
        execution_row(f"X{i}", status, t(f"1{i % 10}:00:00"), t(f"1{i % 10}:0{i % 7 + 1}:00"))
        for i, status in enumerate(statuses)
    ], pipeline="p", run_id="r")  # fmt: skip
    con = queries.connect(tmp_path)
    assert rows(con, "pipeline-summary") == [
        # failure 2 / (3 + 2) = 0.4, not 2 / 10 terminal; superseded 4 / 10
        # Succeeded X0 X1 X2 took 1, 2, 3 min -> median 120 s, p90 120 + 0.8 * 60 = 168 s
        # (the others do not count)
        ("p", 10, 3, 2, 4, 1, 0, 0.4, 0.4, 120.0, 168.0),
    ]


def test_trend(con):
    # no pipeline here has a deploy stage (no Deploy action recorded): deployments 0
    assert rows(con, "trend") == [
        ("api", date(2026, 1, 5), 1, 1, 0, 0.0, 120.0, 0),
        ("api", date(2026, 1, 12), 1, 1, 0, 0.0, 240.0, 0),
        ("ops", date(2026, 1, 5), 1, 0, 0, None, None, 0),
        # E1 S (600 s), E2 S (1200 s), E3 Stopped, E4 F, E5 running: failure_rate as in
        # pipeline-summary, 1 Failed / (2 Succeeded + 1 Failed); p50 of the Succeeded 900
        ("web", date(2026, 1, 5), 5, 2, 1, round(1 / 3, 9), 900.0, 0),
    ]


def test_recent_failures(con):
    assert rows(con, "recent-failures") == [
        ("web", t("13:30:00"), "E4", "Build", "action", "Compile", "JobFailed",
         "Tests failed:\n3 errors", REGION, ACCOUNT),
    ]  # fmt: skip


def test_recent_failures_names_a_failed_rule_as_the_step(tmp_path):
    e = execution_row("R1", "Failed", t("10:00:00"), t("10:09:00"))
    fixed = action_row(
        "R1",
        1,
        "Build",
        "Compile",
        "Failed",
        t("10:00:00"),
        t("10:02:00"),
        error=("JobFailed", "flaky"),
    )
    retry = action_row("R1", 2, "Build", "Compile", "Succeeded", t("10:03:00"), t("10:05:00"))
    rule = {**common_columns(t("10:09:00")), "dt": e["dt"], "execution_id": "R1",
            "rule_execution_id": "R1-r1", "stage": "Build", "rule": "NoAlarms",
            "status": "Failed", "start_time": t("10:05:00"), "last_update_time": t("10:09:00"),
            "error_code": "RuleFailed", "error_message": "alarm in ALARM"}  # fmt: skip
    write_rows(tmp_path, "executions", [e], pipeline="p", run_id="r")
    write_rows(tmp_path, "action_executions", [fixed, retry], pipeline="p", run_id="r")
    write_rows(tmp_path, "rule_executions", [rule], pipeline="p", run_id="r")
    # the action failed at 10:02 and a retry fixed it; the rule failed at 10:09, last
    assert rows(queries.connect(tmp_path), "recent-failures") == [
        (
            "p",
            t("10:00:00"),
            "R1",
            "Build",
            "rule",
            "NoAlarms",
            "RuleFailed",
            "alarm in ALARM",
            REGION,
            ACCOUNT,
        ),
    ]


def test_a_stage_run_takes_its_outcome_from_its_conditions_too(tmp_path):
    """CodePipeline fails a stage whose on-success condition fails after its actions
    succeeded (an alarm rule after a deployment): the stage run is Failed, and so is the
    deployment attempt. A rule still being evaluated keeps the run InProgress (not
    terminal); a rule evaluated before the run began (an entry condition) is not part of
    it."""
    start = t("10:00:00")
    execs = [execution_row(e, "Failed", start, t("10:30:00")) for e in ("C1", "C2", "C3")]
    acts = [action_row(e, 1, "Deploy", "Release", "Succeeded", t("10:01:00"), t("10:05:00"))
            for e in ("C1", "C2", "C3")]  # fmt: skip

    def rule(eid, status, begin, end):
        return {**common_columns(t("10:30:00")), "dt": execs[0]["dt"], "execution_id": eid,
                "rule_execution_id": f"{eid}-{begin}", "stage": "Deploy", "rule": "NoAlarms",
                "status": status, "start_time": t(begin), "last_update_time": t(end)}  # fmt: skip

    rules = [
        rule("C1", "Failed", "10:05:00", "10:09:00"),  # on success, after the actions
        rule("C2", "InProgress", "10:05:00", "10:06:00"),  # still being evaluated
        rule("C3", "Failed", "10:00:00", "10:00:30"),  # before the run: entry, a retry since
    ]
    definition = {**common_columns(t("10:30:00")), "dt": execs[0]["dt"], "pipeline_version": 1,
                  "stage": "Deploy", "stage_index": 0, "action": "Release",
                  "category": "Deploy"}  # fmt: skip
    write_rows(tmp_path, "executions", execs, pipeline="p", run_id="r")
    write_rows(tmp_path, "action_executions", acts, pipeline="p", run_id="r")
    write_rows(tmp_path, "rule_executions", rules, pipeline="p", run_id="r")
    write_rows(tmp_path, "pipeline_actions", [definition], pipeline="p", run_id="r")
    for cache in (False, True):
        if cache:
            refresh(tmp_path)
        con = queries.connect(tmp_path, cache=cache)
        assert con.sql("SELECT execution_id, status, terminal FROM stage_runs ORDER BY ALL"
                       ).fetchall() == [("C1", "Failed", True), ("C2", "InProgress", False),
                                        ("C3", "Succeeded", True)]  # fmt: skip
        # C2 is not terminal: no attempt yet
        assert con.sql("SELECT execution_id, status FROM deploy_attempts([]) ORDER BY ALL"
                       ).fetchall() == [("C1", "Failed"), ("C3", "Succeeded")]  # fmt: skip
        con.close()


def test_error_codes(con):
    # fmt: off
    assert rows(con, "error-codes") == [
        ("JobFailed", "CodeBuild", 2, 1, 2, t("13:30:40"),
         "Tests failed:\n3 errors"),
    ]
    # fmt: on


def test_approval_waits(con):
    assert rows(con, "approval-waits") == [
        # pending since 01-07 08:05, now 10:05 -> 7200 s
        ("ops", "Deploy", "Approve", 1, 0, 0, 0, 1, None, None, None, None, 7200.0),
        # approved waits 180, 120 -> p50 150, p90 at 0.9 = 120 + 0.9*60 = 174, max 180;
        # the abandoned one waited 3600 (12:05 -> 13:05) and is apart
        ("web", "Deploy", "Approve", 3, 2, 0, 1, 0, 150.0, 174.0, 180.0, 3600.0, None),
    ]


def test_current_state(con):
    snap_ops, snap_web = t("08:06:00", 7), t("14:01:00")
    # checked: run-2 started 01-07 10:00 (partial, but it failed on api only) -> 300 s to now
    assert rows(con, "current-state") == [
        ("ops", "approval", "Deploy", "Approve", "O1", t("08:05:00", 7), 7200.0,
         "awaiting approval", snap_ops, 300.0),
        # since = O1's Deploy stage run start (08:05), not the execution's (08:00)
        ("ops", "running", "Deploy", None, "O1", t("08:05:00", 7), 7200.0, "InProgress",
         snap_ops, 300.0),
        # E5's Build started 01-05 14:00:35 -> 01-07 10:05 = 44 h 4 min 25 s
        ("web", "running", "Build", None, "E5", t("14:00:35"), 158665.0, "InProgress",
         snap_web, 300.0),
        ("web", "disabled", "Deploy", None, None, t("09:00:00"), 176700.0,
         "Freeze for release by alice", snap_web, 300.0),
    ]  # fmt: skip
    # --until picks the snapshot in force then: web's 13:31 one, E4's Build running since
    # 13:30:40; no run started before 14:00, so checked = the snapshot: 13:31 -> 01-07 10:05
    got = rows(con, "current-state", until=t("14:00:00"), pipelines=["web"])
    assert [(r[8], r[1], r[2], r[4], r[5], r[9]) for r in got] == [
        (t("13:31:00"), "running", "Build", "E4", t("13:30:40"), 160440.0)
    ]


def test_current_state_lists_blocked_and_queued_executions(tmp_path):
    snap = t("12:00:00")

    def stage(idx, name, **extra):
        return {**common_columns(snap), "dt": snap.date(), "snapshot_at": snap,
                "pipeline_version": 1, "stage": name, "stage_index": idx,
                "transition_enabled": True, **extra}  # fmt: skip

    write_rows(tmp_path, "stage_states", [
        stage(0, "Build", latest_execution_id="Q3", latest_execution_status="InProgress",
              inbound_executions_json='[{"pipelineExecutionId": "Q2", "status": "InProgress",'
                                      ' "type": "STANDARD"}]'),
        stage(1, "Deploy", transition_enabled=False, transition_disabled_reason="Freeze",
              transition_last_changed_at=t("08:00:00"), transition_last_changed_by="bob",
              inbound_execution_id="Q1", inbound_execution_status="InProgress"),
    ], pipeline="p", run_id="r")  # fmt: skip
    write_rows(tmp_path, "executions", [
        execution_row("Q1", "InProgress", t("09:00:00"), t("09:30:00")),
        execution_row("Q2", "InProgress", t("11:00:00"), t("11:00:00")),
        execution_row("Q3", "InProgress", t("10:30:00"), t("11:40:00")),
    ], pipeline="p", run_id="r")  # fmt: skip
    write_rows(tmp_path, "action_executions", [
        action_row("Q1", 1, "Build", "Compile", "Succeeded", t("09:00:00"), t("09:30:00")),
        action_row("Q3", 1, "Build", "Compile", "InProgress", t("10:30:00"), t("11:40:00")),
    ], pipeline="p", run_id="r")  # fmt: skip
    got = rows(queries.connect(tmp_path), "current-state")
    # no collection run recorded: checked = the snapshot, 01-05 12:00 -> 01-07 10:05
    age = 2 * 86400 - 115 * 60
    assert got == [
        # Q2 waits in the queue before Build since its start (no stage run yet)
        ("p", "queued", "Build", None, "Q2", t("11:00:00"), 2 * 86400 - 55 * 60 + 0.0,
         "waiting to enter the stage", snap, age),
        ("p", "running", "Build", None, "Q3", t("10:30:00"), 2 * 86400 - 25 * 60 + 0.0,
         "InProgress", snap, age),
        # Q1 is held at Deploy's disabled transition since its Build ended at 09:30
        ("p", "blocked", "Deploy", None, "Q1", t("09:30:00"), 2 * 86400 + 35 * 60 + 0.0,
         "Freeze", snap, age),
        ("p", "disabled", "Deploy", None, None, t("08:00:00"), 2 * 86400 + 125 * 60 + 0.0,
         "Freeze by bob", snap, age),
    ]  # fmt: skip


def test_flaky_actions(con):
    assert rows(con, "flaky-actions") == [
        # Compile ran in E1..E5; failed then succeeded in E2 only
        ("web", "Build", "Compile", 5, 1, 0.2, t("11:00:30")),
    ]


def test_collection_health(con):
    assert rows(con, "collection-health") == [
        (t("10:00:00", 7), REGION, "partial", 75.0, 2, 1, 55, 3, 3, 1, "api: AccessDenied",
         ACCOUNT, "run-2"),
        (t("14:05:00"), REGION, "succeeded", 30.0, 3, 0, 40, 0, 0, 0, None, ACCOUNT, "run-1"),
    ]  # fmt: skip


# --- robustness ----------------------------------------------------------------------------


def test_every_query_runs_on_an_empty_root(tmp_path):
    con = queries.connect(tmp_path)
    for name in queries.named_queries():
        assert queries.run_query(con, name).num_rows == 0, name


def test_every_query_runs_on_an_older_schema_file(scenario, tmp_path):
    write_old_schema_files(tmp_path)
    con = queries.connect(tmp_path)
    assert con.sql("SELECT execution_type, error_code IS NULL FROM executions, action_executions")
    assert con.sql("SELECT execution_id, execution_type FROM executions").fetchall() == [
        ("OLD1", None)
    ]
    for name in queries.named_queries():
        queries.run_query(con, name)
    assert rows(con, "failure-rates") == [("legacy", "Build", "Compile", 1, 0, 1, 1.0)]
    # mixed with current files, too
    build_scenario(tmp_path)
    con = queries.connect(tmp_path)
    for name in queries.named_queries():
        queries.run_query(con, name)
    assert len(rows(con, "pipeline-summary")) == 4


def test_a_quote_in_a_pipeline_pattern_is_data_not_sql(con):
    for pattern in ["web'", "' OR 1=1 --", 'x"; DROP VIEW executions; --']:
        for name in queries.named_queries():
            if name != "collection-health":  # has no pipeline column
                assert queries.run_query(con, name, pipelines=[pattern]).num_rows == 0
    assert rows(con, "pipeline-summary", pipelines=["w?b"])[0][0] == "web"


def test_a_pipeline_named_like_a_number_stays_text(tmp_path):
    row = execution_row("N1", "Failed", t("10:00:00"), t("10:01:00"))
    write_rows(tmp_path, "executions", [row], pipeline="42", run_id="r")
    con = queries.connect(tmp_path)
    assert rows(con, "pipeline-summary", pipelines=["42"]) == [
        ("42", 1, 0, 1, 0, 0, 0, 1.0, 0.0, None, None)
    ]


def test_corrupt_parquet_names_the_file(tmp_path):
    build_scenario(tmp_path)
    bad = tmp_path / "executions" / "pipeline=web" / "dt=2026-01-05" / "part-bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(UserError) as err:
        con = queries.connect(tmp_path)
        queries.run_query(con, "pipeline-summary", data_root=tmp_path)
    assert "part-bad.parquet" in err.value.message
    assert "\n" not in err.value.message


def test_unknown_query_lists_the_valid_ones(con):
    with pytest.raises(UserError, match="valid names: action-durations, approval-waits"):
        queries.run_query(con, "nope")


def test_named_queries_have_descriptions():
    named = queries.named_queries()
    assert len(named) >= 11
    for q in named.values():
        assert q.description and not q.description.startswith("-")
        assert q.parameters <= set(queries.PARAMETERS), q.name


def test_database_file_views_read_the_parquet(scenario, tmp_path):
    path = tmp_path / "cprec.duckdb"
    queries.write_database(path, scenario)
    with duckdb.connect(str(path), read_only=True) as db:
        assert db.sql("SELECT count(*) FROM executions").fetchall() == [(8,)]
        assert db.sql("SELECT count(*) FROM stage_runs WHERE terminal").fetchall() == [(15,)]
