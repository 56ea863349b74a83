"""Where the time goes: `stage-waits`, `time-breakdown`, `rework` and `regressions` against
a hand-built data root of their own (`build_time_scenario`, drawn in its docstring): every
figure computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from conftest import common_columns, execution_row, query_rows, t

import queries
from recorder import cache
from recorder.store import write_rows

NOW = datetime(2026, 3, 10, tzinfo=UTC)
T = datetime(2026, 3, 1, tzinfo=UTC)  # the `until` of the regressions tests


def at(month: int, day: int, hms: str = "00:00:00") -> datetime:
    return datetime.fromisoformat(f"2026-{month:02d}-{day:02d}T{hms}+00:00")


def seconds(start: datetime, s: float) -> datetime:
    return datetime.fromtimestamp(start.timestamp() + s, UTC)


CATEGORY = {"Checkout": "Source", "Compile": "Build", "Approve": "Approval"}
CATEGORY |= {"Release": "Deploy", "UnitTests": "Test"}


def action(eid, n, stage, name, status, start, end, version=1):
    return {
        **common_columns(end),
        "dt": start.date(),
        "execution_id": eid,
        "action_execution_id": f"{eid}-a{n}",
        "pipeline_version": version,
        "stage": stage,
        "action": name,
        "status": status,
        "start_time": start,
        "last_update_time": end,
        "category": CATEGORY[name],
    }


def revision(eid, kind, name, created, day):
    return {
        **common_columns(t("17:00:00", day)),
        "dt": t("00:00:00", day).date(),
        "execution_id": eid,
        "kind": kind,
        "name": name,
        "revision_id": f"{eid}-{name}",
        "created": created,
    }


# svc: (execution, start, pipeline version, Build s, Test s, Deploy s); None = InProgress
SVC = [
    ("X0", at(1, 24, "09:00:00"), 1, 1000, 1000, 1000),
    ("B1", at(1, 25, "00:00:00"), 1, 90, 50, 30),
    ("B2", at(2, 2, "09:00:00"), 1, 100, 60, 30),
    ("B3", at(2, 3, "09:00:00"), 1, 100, 60, 30),
    ("B4", at(2, 4, "09:00:00"), 1, 110, 60, 30),
    ("B5", at(2, 5, "09:00:00"), 1, 120, 70, 30),
    ("R1", at(2, 22, "00:00:00"), 1, 180, 70, 100),
    ("R2", at(2, 23, "09:00:00"), 1, 190, 72, 100),
    ("R3", at(2, 24, "09:00:00"), 2, 200, 72, 100),
    ("R4", at(2, 25, "09:00:00"), 2, 210, 72, 100),
    ("R5", at(2, 28, "09:00:00"), 2, 220, 80, None),
    ("X9", at(3, 1, "00:00:00"), 2, 5000, 1000, 1000),
]
SVC_STAGES = (("Build", "Compile"), ("Test", "UnitTests"), ("Deploy", "Release"))
# lib: (execution, start, Build s), all pipeline version 4
LIB = [
    ("L1", at(2, 9, "12:00:00"), 80),
    ("L2", at(2, 10, "12:00:00"), 90),
    ("L3", at(2, 11, "12:00:00"), 100),
    ("L4", at(2, 12, "12:00:00"), 100),
    ("L5", at(2, 13, "12:00:00"), 110),
    ("L6", at(2, 14, "12:00:00"), 120),
    ("L7", at(2, 23, "12:00:00"), 100),
    ("L8", at(2, 24, "12:00:00"), 120),
    ("L9", at(2, 25, "12:00:00"), 125),
    ("L10", at(2, 26, "12:00:00"), 130),
    ("L11", at(2, 27, "12:00:00"), 150),
]


def build_time_scenario(root: Path) -> Path:
    """Three pipelines (account 111111111111, us-east-1; S = Succeeded, F = Failed).

    shop, 2026-01-12 (before any regressions window). Stages Source (Checkout), Build
    (Compile), Deploy (Approve [Approval], Release). wait = the stage's start - the end of
    the stage before it, or - the execution's start for the first stage.

    S1 Succeeded 10:00:00-  Source  Checkout 10:10:00-10:10:30 S   stage 30 s, wait 600 (queued)
                            Build   Compile  10:11:00-10:15:00 S   stage 240 s, wait 30
                            Deploy  Approve  10:15:20-10:25:20 S   (approval 600 s)
                                    Release  10:25:30-10:30:00 S   stage 880 s, wait 20
       artifact SourceArtifact created 09:50:00
    S2 Succeeded 11:00:00-  Source  Checkout 11:00:00-11:00:30 S   stage 30 s, wait 0
       (Build retried;      Build   Compile  11:00:40-11:02:00 F
        Deploy transition           Compile  11:03:00-11:05:00 S   stage 260 s, 2 attempts, wait 10
        disabled 2 h)       Deploy  Release  13:05:00-13:08:00 S   stage 180 s, wait 7200 (held)
       no Approve; artifact SourceArtifact without `created`
    S3 Succeeded 14:00:00-  Source  Checkout 14:02:00-14:02:40 S   stage 40 s, wait 120 (queued)
       (Build: 3 attempts;  Build   Compile  14:03:00-14:04:00 F
        Deploy: Release             Compile  14:05:00-14:06:00 F
        retried once)               Compile  14:07:00-14:10:00 S   stage 420 s, 3 attempts, wait 20
                            Deploy  Approve  14:10:10-14:12:10 S   (approval 120 s)
                                    Release  14:12:20-14:13:00 F
                                    Release  14:14:00-14:15:00 S   stage 290 s, 2 attempts, wait 10
       artifacts SourceArtifact created 13:00:00, ConfigArtifact 13:30:00; a `source`
       revision Checkout created 12:00:00 (not an artifact: not counted)
    S4 Failed    15:00:00-  Source  Checkout 15:30:00-15:30:30 S   stage 30 s, wait 1800 (queued)
                            Build   Compile  15:30:40-15:32:40 F   stage 120 s, wait 10
       artifact SourceArtifact created 14:50:00
    S5 InProgress 16:00:00- Source  Checkout 16:00:00-16:00:20 S   stage 20 s, wait 0
                            Build   Compile  16:00:30-16:01:00 F
                                    Compile  16:02:00-(16:02:30) InProgress: not terminal,
                                             wait 10

    svc (stages Build [Compile], Test [UnitTests], Deploy [Release] back to back from the
    execution's start: every wait 0; all Succeeded but R5). Durations in seconds; with
    until T = 03-01 00:00: baseline = [01-25 00:00, 02-22 00:00), recent = [02-22 00:00, T).

      exec start        version Build  Test Deploy
      X0   01-24 09:00  1        1000  1000   1000  before the baseline: out
      B1   01-25 00:00  1          90    50     30  baseline (from its first instant)
      B2   02-02 09:00  1         100    60     30  baseline
      B3   02-03 09:00  1         100    60     30  baseline
      B4   02-04 09:00  1         110    60     30  baseline
      B5   02-05 09:00  1         120    70     30  baseline
      R1   02-22 00:00  1         180    70    100  recent (from its first instant)
      R2   02-23 09:00  1         190    72    100  recent
      R3   02-24 09:00  2         200    72    100  recent, a new version
      R4   02-25 09:00  2         210    72    100  recent
      R5   02-28 09:00  2         220    80  (60)   recent; InProgress: Deploy running
      X9   03-01 00:00  2        5000  1000   1000  at T: out (until is exclusive)

    lib (one stage, Build [Compile], from the execution's start; all Succeeded, version 4):
      baseline L1-L6  02-09 .. 02-14 12:00   Build 80 90 100 100 110 120
      recent   L7-L11 02-23 .. 02-27 12:00   Build 100 120 125 130 150
    """
    a, ex = action, execution_row
    write_rows(root, "executions", [
        ex("S1", "Succeeded", t("10:00:00", 12), t("10:30:00", 12)),
        ex("S2", "Succeeded", t("11:00:00", 12), t("13:08:00", 12)),
        ex("S3", "Succeeded", t("14:00:00", 12), t("14:15:00", 12)),
        ex("S4", "Failed", t("15:00:00", 12), t("15:32:40", 12)),
        ex("S5", "InProgress", t("16:00:00", 12), t("16:02:30", 12)),
    ], pipeline="shop", run_id="run-1")  # fmt: skip
    d = 12
    write_rows(root, "action_executions", [
        a("S1", 1, "Source", "Checkout", "Succeeded", t("10:10:00", d), t("10:10:30", d)),
        a("S1", 2, "Build", "Compile", "Succeeded", t("10:11:00", d), t("10:15:00", d)),
        a("S1", 3, "Deploy", "Approve", "Succeeded", t("10:15:20", d), t("10:25:20", d)),
        a("S1", 4, "Deploy", "Release", "Succeeded", t("10:25:30", d), t("10:30:00", d)),
        a("S2", 1, "Source", "Checkout", "Succeeded", t("11:00:00", d), t("11:00:30", d)),
        a("S2", 2, "Build", "Compile", "Failed", t("11:00:40", d), t("11:02:00", d)),
        a("S2", 3, "Build", "Compile", "Succeeded", t("11:03:00", d), t("11:05:00", d)),
        a("S2", 4, "Deploy", "Release", "Succeeded", t("13:05:00", d), t("13:08:00", d)),
        a("S3", 1, "Source", "Checkout", "Succeeded", t("14:02:00", d), t("14:02:40", d)),
        a("S3", 2, "Build", "Compile", "Failed", t("14:03:00", d), t("14:04:00", d)),
        a("S3", 3, "Build", "Compile", "Failed", t("14:05:00", d), t("14:06:00", d)),
        a("S3", 4, "Build", "Compile", "Succeeded", t("14:07:00", d), t("14:10:00", d)),
        a("S3", 5, "Deploy", "Approve", "Succeeded", t("14:10:10", d), t("14:12:10", d)),
        a("S3", 6, "Deploy", "Release", "Failed", t("14:12:20", d), t("14:13:00", d)),
        a("S3", 7, "Deploy", "Release", "Succeeded", t("14:14:00", d), t("14:15:00", d)),
        a("S4", 1, "Source", "Checkout", "Succeeded", t("15:30:00", d), t("15:30:30", d)),
        a("S4", 2, "Build", "Compile", "Failed", t("15:30:40", d), t("15:32:40", d)),
        a("S5", 1, "Source", "Checkout", "Succeeded", t("16:00:00", d), t("16:00:20", d)),
        a("S5", 2, "Build", "Compile", "Failed", t("16:00:30", d), t("16:01:00", d)),
        a("S5", 3, "Build", "Compile", "InProgress", t("16:02:00", d), t("16:02:30", d)),
    ], pipeline="shop", run_id="run-1")  # fmt: skip
    write_rows(root, "execution_revisions", [
        revision("S1", "artifact", "SourceArtifact", t("09:50:00", d), d),
        revision("S2", "artifact", "SourceArtifact", None, d),
        revision("S3", "artifact", "SourceArtifact", t("13:00:00", d), d),
        revision("S3", "artifact", "ConfigArtifact", t("13:30:00", d), d),
        revision("S3", "source", "Checkout", t("12:00:00", d), d),
        revision("S4", "artifact", "SourceArtifact", t("14:50:00", d), d),
    ], pipeline="shop", run_id="run-1")  # fmt: skip

    executions, actions = [], []
    for eid, start, version, *durations in SVC:
        begin, end = start, start
        for n, ((stage, name), s) in enumerate(zip(SVC_STAGES, durations, strict=True), start=1):
            status = "Succeeded" if s is not None else "InProgress"
            end = seconds(begin, s if s is not None else 60)  # R5's Deploy: running for 60 s
            actions.append(a(eid, n, stage, name, status, begin, end, version))
            begin = end
        running = durations[-1] is None
        executions.append(
            ex(eid, "InProgress" if running else "Succeeded", start, end, version=version)
        )
    write_rows(root, "executions", executions, pipeline="svc", run_id="run-1")
    write_rows(root, "action_executions", actions, pipeline="svc", run_id="run-1")

    executions, actions = [], []
    for eid, start, s in LIB:
        end = seconds(start, s)
        actions.append(a(eid, 1, "Build", "Compile", "Succeeded", start, end, 4))
        executions.append(ex(eid, "Succeeded", start, end, version=4))
    write_rows(root, "executions", executions, pipeline="lib", run_id="run-1")
    write_rows(root, "action_executions", actions, pipeline="lib", run_id="run-1")
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return build_time_scenario(tmp_path_factory.mktemp("time-spent"))


@pytest.fixture(scope="module", params=["parquet", "cache"])
def con(request, root) -> duckdb.DuckDBPyConnection:
    """Over the Parquet views (stage_runs and execution_times computed) and over the query
    cache (both stored)."""
    if request.param == "parquet":
        return queries.connect(root, cache=False)
    cache.build(root)
    return queries.connect(root, cache=True)  # cache=True: the cache or an error


def rows(con, name, **kw) -> list[tuple]:
    return query_rows(con, name, **{"now": NOW, **kw})


def columns(con, name) -> list[str]:
    return queries.run_query(con, name, now=NOW).column_names


def test_the_scenarios_stage_runs(con):
    got = con.sql(
        "SELECT execution_id, stage, duration_s, status, attempts, terminal, action_executions "
        "FROM stage_runs WHERE pipeline = 'shop' ORDER BY start_time"
    ).fetchall()
    assert got == [
        ("S1", "Source", 30.0, "Succeeded", 1, True, 1),
        ("S1", "Build", 240.0, "Succeeded", 1, True, 1),
        ("S1", "Deploy", 880.0, "Succeeded", 1, True, 2),  # 10:30:00 - 10:15:20
        ("S2", "Source", 30.0, "Succeeded", 1, True, 1),
        ("S2", "Build", 260.0, "Succeeded", 2, True, 2),  # 11:05:00 - 11:00:40
        ("S2", "Deploy", 180.0, "Succeeded", 1, True, 1),
        ("S3", "Source", 40.0, "Succeeded", 1, True, 1),
        ("S3", "Build", 420.0, "Succeeded", 3, True, 3),  # 14:10:00 - 14:03:00
        # Approve once, Release twice: attempts = the most of one action = 2, not 3
        ("S3", "Deploy", 290.0, "Succeeded", 2, True, 3),  # 14:15:00 - 14:10:10
        ("S4", "Source", 30.0, "Succeeded", 1, True, 1),
        ("S4", "Build", 120.0, "Failed", 1, True, 1),
        ("S5", "Source", 20.0, "Succeeded", 1, True, 1),
        ("S5", "Build", 120.0, "InProgress", 2, False, 2),  # 16:02:30 - 16:00:30
    ]


# --- stage-waits ---------------------------------------------------------------------------


def test_stage_waits(con):
    assert columns(con, "stage-waits") == [
        "pipeline", "stage", "runs", "p50_wait_s", "p90_wait_s", "max_wait_s", "total_wait_s",
    ]  # fmt: skip
    assert rows(con, "stage-waits") == [
        # L1-L11: Build starts with the execution
        ("lib", "Build", 11, 0.0, 0.0, 0.0, 0.0),
        # first stage, from the execution's start: S1 10:10:00 - 10:00:00 = 600, S2 0,
        # S3 14:02:00 - 14:00:00 = 120, S4 15:30:00 - 15:00:00 = 1800 (Failed counts too),
        # S5 0 -> sorted 0 0 120 600 1800; p50 = 120; p90 at 3.6 = 600 + 0.6*1200 = 1320;
        # total 2520
        ("shop", "Source", 5, 120.0, 1320.0, 1800.0, 2520.0),
        # S1 10:11:00 - 10:10:30 = 30, S2 11:00:40 - 11:00:30 = 10, S3 14:03:00 - 14:02:40
        # = 20, S4 15:30:40 - 15:30:30 = 10, S5 16:00:30 - 16:00:20 = 10 (still running:
        # its wait is over) -> sorted 10 10 10 20 30; p50 10; p90 at 3.6 = 20 + 0.6*10 = 26
        ("shop", "Build", 5, 10.0, 26.0, 30.0, 80.0),
        # S1 10:15:20 - 10:15:00 = 20, S2 13:05:00 - 11:05:00 = 7200 (disabled transition),
        # S3 14:10:10 - 14:10:00 = 10 -> sorted 10 20 7200; p50 20;
        # p90 at 1.8 = 20 + 0.8*7180 = 5764; total 7230
        ("shop", "Deploy", 3, 20.0, 5764.0, 7200.0, 7230.0),
        # X0-X9 back to back; R5's running Deploy has started, its wait (0) counts
        ("svc", "Build", 12, 0.0, 0.0, 0.0, 0.0),
        ("svc", "Test", 12, 0.0, 0.0, 0.0, 0.0),
        ("svc", "Deploy", 12, 0.0, 0.0, 0.0, 0.0),
    ]


def test_stage_waits_window_is_on_the_stage_runs_start(con):
    # [13:00, 15:30): S2's Deploy (13:05; S2 itself started at 11:00), all of S3; S4's
    # Source starts at 15:30:00 = until: out
    got = rows(
        con, "stage-waits", since=t("13:00:00", 12), until=t("15:30:00", 12),
        pipelines=["sh?p", "nomatch"],
    )  # fmt: skip
    assert got == [
        # S2 7200, S3 10: p50 = (10 + 7200) / 2 = 3605; p90 = 10 + 0.9*7190 = 6481;
        # first start in the window 13:05, so before Source
        ("shop", "Deploy", 2, 3605.0, 6481.0, 7200.0, 7210.0),
        ("shop", "Source", 1, 120.0, 120.0, 120.0, 120.0),  # S3 14:02:00 - 14:00:00
        ("shop", "Build", 1, 20.0, 20.0, 20.0, 20.0),  # S3 14:03:00 - 14:02:40
    ]


# --- time-breakdown ------------------------------------------------------------------------


def test_time_breakdown(con):
    assert columns(con, "time-breakdown") == [
        "pipeline", "executions", "total_s", "in_stages_s", "queued_s", "between_stages_s",
        "approval_s", "source_to_start_s",
    ]  # fmt: skip
    assert rows(con, "time-breakdown") == [
        # L1-L11, one stage each: total = in stages = Build: sorted 80 90 100 100 100 110 120
        # 120 125 130 150 -> the 6th, 110; no revisions: source_to_start_s NULL
        ("lib", 11, 110.0, 110.0, 0.0, 0.0, 0.0, None),
        # Succeeded S1, S2, S3 (S4 Failed and S5 InProgress left out):
        #   total    S1 10:30:00 - 10:10:00 = 1200, S2 13:08:00 - 11:00:00 = 7680,
        #            S3 14:15:00 - 14:02:00 = 780                        -> median 1200
        #   in stages S1 30 + 240 + 880 = 1150, S2 30 + 260 + 180 = 470,
        #            S3 40 + 420 + 290 = 750                             -> median 750
        #   queued   S1 600, S2 0, S3 120                                -> median 120
        #   between  S1 30 + 20 = 50, S2 10 + 7200 = 7210, S3 20 + 10 = 30 -> median 50
        #   approval S1 10:25:20 - 10:15:20 = 600, S2 none = 0, S3 120  -> median 120
        #   source   S1 10:00:00 - 09:50:00 = 600, S3 14:00:00 - 13:00:00 (the earliest
        #            artifact; the `source` revision's 12:00 is not one) = 3600; S2 has no
        #            `created`: left out (counted as 0 the median would be 600)
        #                                               -> median (600 + 3600) / 2 = 2100
        ("shop", 3, 1200.0, 750.0, 120.0, 50.0, 120.0, 2100.0),
        # X0, B1-B5, R1-R4, X9 (R5 InProgress): Build + Test + Deploy back to back =
        # 3000, 170, 190, 190, 200, 220, 350, 362, 372, 382, 7000 -> sorted, the 6th: 350
        ("svc", 11, 350.0, 350.0, 0.0, 0.0, 0.0, None),
    ]


def test_time_breakdown_window_is_on_the_executions_start(con):
    # [11:00, 14:00): S2 only (S3 starts at 14:00 = until); S2 has no `created`
    got = rows(con, "time-breakdown", since=t("11:00:00", 12), until=t("14:00:00", 12))
    assert got == [("shop", 1, 7680.0, 470.0, 0.0, 7210.0, 0.0, None)]
    # [14:00, 16:00): S3 only (S4 Failed)
    got = rows(con, "time-breakdown", since=t("14:00:00", 12), until=t("16:00:00", 12))
    assert got == [("shop", 1, 780.0, 750.0, 120.0, 30.0, 120.0, 3600.0)]


# --- rework --------------------------------------------------------------------------------


def test_rework(con):
    assert columns(con, "rework") == [
        "pipeline", "stage", "runs", "retried", "retry_rate", "extra_attempts",
    ]  # fmt: skip
    assert rows(con, "rework") == [
        ("lib", "Build", 11, 0, 0.0, 0),
        ("shop", "Source", 5, 0, 0.0, 0),
        # terminal S1-S4 (S5's Build, a retry still running, is left out): attempts
        # 1, 2, 3, 1 -> retried 2 of 4 = 0.5; extra (2 - 1) + (3 - 1) = 3
        ("shop", "Build", 4, 2, 0.5, 3),
        # S1 1, S2 1, S3 2 (Release twice) -> 1 of 3; extra 1
        ("shop", "Deploy", 3, 1, round(1 / 3, 9), 1),
        ("svc", "Build", 12, 0, 0.0, 0),
        ("svc", "Test", 12, 0, 0.0, 0),
        ("svc", "Deploy", 11, 0, 0.0, 0),  # R5's is still running
    ]


def test_rework_window_and_pipeline_glob(con):
    # [14:00, 16:00) on the stage run's start: S3, S4
    got = rows(con, "rework", since=t("14:00:00", 12), until=t("16:00:00", 12), pipelines=["s*"])
    assert got == [
        ("shop", "Source", 2, 0, 0.0, 0),
        ("shop", "Build", 2, 1, 0.5, 2),  # S3 3 attempts (extra 2), S4 1
        ("shop", "Deploy", 1, 1, 1.0, 1),  # S3 2 attempts
    ]
    # svc matches s* too: X9 (03-01) is the only one on or after 02-28 12:00
    got = rows(con, "rework", since=at(2, 28, "12:00:00"), pipelines=["s*"])
    assert got == [("svc", "Build", 1, 0, 0.0, 0), ("svc", "Test", 1, 0, 0.0, 0),
                   ("svc", "Deploy", 1, 0, 0.0, 0)]  # fmt: skip


# --- regressions ---------------------------------------------------------------------------

# With until T = 03-01 00:00: recent = [02-22 00:00, T), baseline = [01-25 00:00, 02-22 00:00)
REGRESSIONS = [
    # svc Build: recent R1-R5 180 190 200 210 220 -> 200; baseline B1-B5 90 100 100 110 120
    # -> 100 (X0's 1000 and X9's 5000 are outside: with them 105 and 210); 200 / 100 = 2.0;
    # versions recent {1, 2}, baseline {1} -> new '2'
    ("svc", "Build", 200.0, 100.0, 2.0, 5, 5, "2"),
    # lib Build: recent 100 120 125 130 150 -> 125; baseline 80 90 100 100 110 120
    # -> (100 + 100) / 2 = 100; 125 / 100 = 1.25 (the bound itself); no new version
    ("lib", "Build", 125.0, 100.0, 1.25, 5, 6, None),
    # absent: svc Test recent 70 72 72 72 80 -> 72, baseline 50 60 60 60 70 -> 60,
    # 72 / 60 = 1.2 < 1.25; svc Deploy 100 / 30 but 4 terminal recent runs (R5's running
    # Deploy is left out: with it 5 runs, median 100, and the row would show); shop's runs
    # (01-12) are before the baseline
]


def test_regressions(con):
    assert columns(con, "regressions") == [
        "pipeline", "stage", "recent_p50_s", "baseline_p50_s", "ratio", "recent_runs",
        "baseline_runs", "new_versions",
    ]  # fmt: skip
    assert rows(con, "regressions", until=T) == REGRESSIONS  # worst first
    # --since does not apply
    assert rows(con, "regressions", since=at(2, 27), until=T) == REGRESSIONS


def test_regressions_end_at_now_without_until(con):
    assert rows(con, "regressions", now=T) == REGRESSIONS
    # now 03-10: recent = [03-03, 03-10) holds no run
    assert rows(con, "regressions") == []


def test_regressions_pipeline_glob(con):
    assert rows(con, "regressions", until=T, pipelines=["l*"]) == [REGRESSIONS[1]]
    assert rows(con, "regressions", until=T, pipelines=["shop"]) == []
