"""Delivery queries (`deployments`, `lead-time`, `change-failure-rate`, `time-to-restore`,
`dora`) and the table macros behind them (recorder/sql/_delivery.sql) against the
hand-built data root of delivery_scenario.build_delivery_scenario (its docstring draws
the timelines): every figure computed by hand. Days are 86400 s, weeks 604800 s."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from conftest import common_columns, query_rows
from delivery_scenario import DEFINITIONS, NOW, Pipeline, at, build_delivery_scenario

import queries
from recorder import cache
from recorder.store import write_rows

DAY = 86400


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    return build_delivery_scenario(tmp_path_factory.mktemp("delivery"))


@pytest.fixture(scope="module", params=["parquet", "cache"])
def con(request, scenario) -> duckdb.DuckDBPyConnection:
    """Every test runs over the Parquet views (each figure computed by the rule's macros)
    and over the query cache (the default rule's attempts read from its table)."""
    if request.param == "parquet":
        return queries.connect(scenario, cache=False)
    cache.build(scenario)
    return queries.connect(scenario, cache=True)  # cache=True: the cache or an error


def rows(con, name, **kw) -> list[tuple]:
    return query_rows(con, name, **{"now": NOW, **kw})


def macro(con, sql: str, **params) -> list[tuple]:
    """Rows of SQL over the table macros (through Arrow: timestamps stay UTC datetimes)."""
    return [tuple(r.values()) for r in con.sql(sql, params=params).to_arrow_table().to_pylist()]


# --- deploy stages, attempts, rollbacks, episodes (the table macros) -----------------------


def test_default_deploy_stage_is_the_last_deploy_stage_of_the_latest_definition(con):
    got = macro(con, "SELECT pipeline, stage FROM deploy_stages($p) ORDER BY ALL", p=[])
    assert got == [
        ("api", "Deploy-us"),  # Deploy-eu also deploys, but Deploy-us is later
        ("batch", "Release"),
        # v2 (latest): Deploy; not v1's Canary (index 2 there) nor v2's Smoke (a Test stage)
        ("shop", "Deploy"),
        # legacy: no definition recorded, no default deploy stage
    ]
    got = macro(con, "SELECT pipeline, stage FROM deploy_stages($p) ORDER BY ALL", p=["Deploy-*"])
    assert got == [("api", "Deploy-eu"), ("api", "Deploy-us")]
    # a GLOB names stages wherever they ran, definition or not
    got = macro(con, "SELECT pipeline, stage FROM deploy_stages($p) ORDER BY ALL", p=["Deploy"])
    assert got == [("legacy", "Deploy"), ("shop", "Deploy")]


def test_deployment_attempts_and_rollbacks(con):
    got = macro(con, """
        SELECT a.execution_id, a.status, a.deploy_time, a.rollback, l.rolled_back_at
        FROM deployment_attempts($p) AS a
        LEFT JOIN deployment_log($p) AS l USING (account_id, region, pipeline, stage, execution_id)
        WHERE pipeline = 'shop' ORDER BY a.deploy_time""", p=[])  # fmt: skip
    # S4 (Superseded before Deploy) and S9 (Deploy InProgress) are no attempts; S3 has no
    # execution_type (NULL): STANDARD. S5 is rolled back by R1, which starts at 07:00 after
    # S5's deployment (06:00) and before the next STANDARD one (S8, 01-14 01:40); S3's
    # next is S5 at 06:00, before R1; S1's is S3.
    assert got == [
        ("S1", "Succeeded", at("01-13 00:20"), False, None),
        ("S2", "Failed", at("01-13 02:30"), False, None),
        ("S3", "Succeeded", at("01-13 03:20"), False, None),
        ("S5", "Succeeded", at("01-13 06:00"), False, at("01-13 07:00")),
        ("R1", "Succeeded", at("01-13 07:15"), True, None),
        ("S6", "Failed", at("01-13 22:30"), False, None),
        ("S7", "Failed", at("01-13 23:20"), False, None),
        ("S8", "Succeeded", at("01-14 01:40"), False, None),
    ]


def test_restore_episodes(con):
    got = macro(con, """
        SELECT execution_id, failed_at, opened_at, restored_at, opens
        FROM deploy_failures($p, $until, $now)
        WHERE pipeline = 'shop' ORDER BY failed_at""", p=[], until=None, now=NOW)  # fmt: skip
    assert got == [
        # S2's Failed Deploy: restored by the next deployment, S3's
        ("S2", at("01-13 02:30"), at("01-13 02:30"), at("01-13 03:20"), True),
        # S5 rolled back at R1's start; R1's own deployment (a ROLLBACK one) restores it
        ("S5", at("01-13 07:00"), at("01-13 07:00"), at("01-13 07:15"), True),
        # two failures, one episode: no deployment between them, both restored by S8's
        ("S6", at("01-13 22:30"), at("01-13 22:30"), at("01-14 01:40"), True),
        ("S7", at("01-13 23:20"), at("01-13 22:30"), at("01-14 01:40"), False),
    ]


# --- deployments ----------------------------------------------------------------------------


def test_deployments(con):
    # columns: pipeline, stage, deployments, rollback_deployments, deploy_days, per_week,
    # median_interval_s, last_deploy
    assert rows(con, "deployments") == [
        # A1 01-01 00:30, A2 01-08 00:40 (A3 Failed); window 01-01 00:00 -> NOW 01-15 00:00
        # = 14 d: 2 * 7 / 14 = 1.0; one interval 01-01 00:30 -> 01-08 00:40 = 7 d 10 min
        # = 604800 + 600 = 605400
        ("api", "Deploy-us", 2, 0, 2, 1.0, 605400.0, at("01-08 00:40")),
        # B1 B2 B3 B4 B6 B7 (B5 Failed); window 2025-11-16 -> 01-15 = 60 d: 6 * 7 / 60 = 0.7;
        # intervals 14 d, 14 d, 14 d, 12-28 01:00 -> 01-10 03:00 = 13 d 2 h,
        # 01-10 03:00 -> 01-12 01:00 = 1 d 22 h -> median 14 d = 1209600
        ("batch", "Release", 6, 0, 6, 0.7, 1209600.0, at("01-12 01:00")),
        # S1 00:20, S3 03:20, S5 06:00, S8 01-14 01:40 (R1 07:15 counted apart; S4, S9 none);
        # days 01-13, 01-14; window 01-13 00:00 -> 01-15 00:00 = 2 d: 4 * 7 / 2 = 14.0;
        # intervals 03:20 - 00:20 = 10800, 06:00 - 03:20 = 9600,
        # 06:00 -> 01-14 01:40 = 19 h 40 min = 70800 -> median 10800
        ("shop", "Deploy", 4, 1, 2, 14.0, 10800.0, at("01-14 01:40")),
        # legacy: no default deploy stage
    ]


def test_deployments_of_two_stages_matched_by_a_glob(con):
    assert rows(con, "deployments", deploy_stages=["Deploy-*"]) == [
        # first attempt 00:20 before Deploy-us's 00:30: listed first. A1 A2 A3 all deploy eu
        # at 00:20 on 01-01, 01-08, 01-14: 3 * 7 / 14 = 1.5; intervals 7 d = 604800 and
        # 6 d = 518400 -> median 561600
        ("api", "Deploy-eu", 3, 0, 3, 1.5, 561600.0, at("01-14 00:20")),
        ("api", "Deploy-us", 2, 0, 2, 1.0, 605400.0, at("01-08 00:40")),
        # shop's, batch's and legacy's stages do not match
    ]


def test_deployments_window(con):
    since, until = at("01-13 04:00"), at("01-14 00:00")
    assert rows(con, "deployments", since=since, until=until) == [
        # S5 06:00 S; R1 07:15 (rollback); S6, S7 Failed. Window 04:00 -> 00:00 = 20 h:
        # 1 * 7 / (20 / 24) = 8.4; one deployment: no interval
        ("shop", "Deploy", 1, 1, 1, 8.4, None, at("01-13 06:00")),
        # api (next attempt 01-14 00:20, after until) and batch (last 01-12): none
    ]
    assert rows(con, "deployments", until=at("01-08 00:00")) == [
        # A1 only; window from api's first start 01-01 00:00 to until: 7 d -> 1 * 7 / 7
        ("api", "Deploy-us", 1, 0, 1, 1.0, None, at("01-01 00:30")),
        # B1..B4; 2025-11-16 -> 01-08 = 53 d: 4 * 7 / 53; intervals 14 d, 14 d, 14 d
        ("batch", "Release", 4, 0, 4, round(28 / 53, 9), 1209600.0, at("2025-12-28 01:00")),
    ]
    assert rows(con, "deployments", since=at("01-10 00:00")) == [
        # A3's Failed attempt (01-14 00:50) is in the window: a row without deployments
        ("api", "Deploy-us", 0, 0, 0, 0.0, None, None),
        # B5 F, B6 01-10 03:00, B7 01-12 01:00; window 01-10 -> NOW = 5 d: 2 * 7 / 5 = 2.8;
        # interval 1 d 22 h = 165600
        ("batch", "Release", 2, 0, 2, 2.8, 165600.0, at("01-12 01:00")),
        # all of shop: 4 * 7 / 5 = 5.6 (the window starts at since, not at shop's first start)
        ("shop", "Deploy", 4, 1, 2, 5.6, 10800.0, at("01-14 01:40")),
    ]
    # only R1's deployment in the window: a row, counted apart
    assert rows(con, "deployments", since=at("01-13 06:30"), until=at("01-13 08:00")) == [
        ("shop", "Deploy", 0, 1, 0, 0.0, None, None),
    ]


# --- lead time ------------------------------------------------------------------------------


def test_lead_time(con):
    # columns: pipeline, deployments, without_created, p50_s, p90_s, mean_s, to_start_s,
    # in_pipeline_s
    assert rows(con, "lead-time") == [
        # A1: 2025-12-31 00:00 -> 01-01 00:30 = 1 d 30 min = 88200 (to start 86400, in
        # pipeline 1800); A2: 01-05 00:00 -> 01-08 00:40 = 3 d 40 min = 261600 (259200 +
        # 2400). p50 = mean = 174900; p90 = 88200 + 0.9 * 173400 = 244260;
        # to_start (86400 + 259200) / 2 = 172800; in_pipeline (1800 + 2400) / 2 = 2100
        ("api", 2, 0, 174900.0, 244260.0, 174900.0, 172800.0, 2100.0),
        # 8, 9, 10, 11, 12 d (B7 has no revision): p50 10 d = 864000; p90 at 3.6 = 11 d +
        # 0.6 d = 11.6 d = 1002240; mean 10 d; every deployment 1 h after its execution's
        # start: to_start 864000 - 3600 = 860400, in_pipeline 3600
        ("batch", 5, 1, 864000.0, 1002240.0, 864000.0, 860400.0, 3600.0),
        # S1: 01-12 22:00 -> 00:20 = 8400 (7200 + 1200); S3: 02:50 -> 03:20 = 1800
        # (600 + 1200); S8: earliest artifact 00:00 (not the 'source' revision of 01-01)
        # -> 01:40 = 6000 (3600 + 2400); S5's revision has no `created`. Sorted 1800 6000
        # 8400: p50 6000; p90 at 1.8 = 6000 + 0.8 * 2400 = 7920; mean 16200 / 3 = 5400;
        # to_start 600 3600 7200 -> 3600; in_pipeline 1200 1200 2400 -> 1200 (S5's 2400 is
        # not a part of any lead time)
        ("shop", 3, 1, 6000.0, 7920.0, 5400.0, 3600.0, 1200.0),
    ]


def test_lead_time_of_two_stages_and_in_a_window(con):
    assert rows(con, "lead-time", deploy_stages=["Deploy-*"]) == [
        # eu: A1 1 d 20 min = 87600, A2 3 d 20 min = 260400, A3 01-13 12:00 -> 01-14 00:20 =
        # 44400; us: 88200, 261600. Sorted 44400 87600 88200 260400 261600: p50 88200;
        # p90 at 3.6 = 260400 + 0.6 * 1200 = 261120; mean 742200 / 5 = 148440;
        # to_start 43200 86400 86400 259200 259200 -> 86400;
        # in_pipeline 1200 (eu x3) 1800 2400 -> 1200
        ("api", 5, 0, 88200.0, 261120.0, 148440.0, 86400.0, 1200.0),
    ]
    since, until = at("01-13 00:00"), at("01-14 00:00")
    assert rows(con, "lead-time", since=since, until=until) == [
        # S1 8400, S3 1800 (S5 without created; S8 after until): p50 = mean = 5100;
        # p90 = 1800 + 0.9 * 6600 = 7740; to_start (7200 + 600) / 2 = 3900
        ("shop", 2, 1, 5100.0, 7740.0, 5100.0, 3900.0, 1200.0),
    ]


# --- change failure rate ----------------------------------------------------------------------


def test_change_failure_rate(con):
    # columns: pipeline, attempts, failed, rolled_back, rollbacks, change_failure_rate
    assert rows(con, "change-failure-rate") == [
        ("api", 3, 1, 0, 0, round(1 / 3, 9)),  # A3 failed
        ("batch", 7, 1, 0, 0, round(1 / 7, 9)),  # B5 failed
        # S1 S2 S3 S5 S6 S7 S8 (R1 is a ROLLBACK: not an attempt); S2 S6 S7 failed, S5
        # rolled back: (3 + 1) / 7
        ("shop", 7, 3, 1, 1, round(4 / 7, 9)),
    ]


def test_change_failure_rate_of_two_stages_and_in_a_window(con):
    assert rows(con, "change-failure-rate", deploy_stages=["Deploy-*"]) == [
        ("api", 6, 1, 0, 0, round(1 / 6, 9)),  # eu 3 S; us 2 S + A3 F
        # R1 is a ROLLBACK execution of shop in the window: counted per pipeline, whatever
        # the deploy stages
        ("shop", 0, 0, 0, 1, None),
    ]
    since, until = at("01-13 04:00"), at("01-14 00:00")
    assert rows(con, "change-failure-rate", since=since, until=until) == [
        ("shop", 3, 2, 1, 1, 1.0),  # S5 rolled back, S6 and S7 failed: 3 / 3
    ]
    # R1 started in the window, no attempt in it
    assert rows(con, "change-failure-rate", since=at("01-13 06:30"), until=at("01-13 08:00")) == [
        ("shop", 0, 0, 0, 1, None),
    ]


# --- time to restore --------------------------------------------------------------------------


def test_time_to_restore(con):
    # columns: pipeline, failures, episodes, restored, p50_restore_s, max_restore_s, unrestored
    assert rows(con, "time-to-restore") == [
        ("api", 1, 1, 0, None, None, 1),  # A3 failed at 01-14 00:50; nothing deployed since
        ("batch", 1, 1, 1, 7200.0, 7200.0, 0),  # B5 01:00 -> B6 03:00 = 7200
        # episodes 03:20 - 02:30 = 3000; 07:15 - 07:00 = 900; 22:30 -> 01-14 01:40 = 3 h
        # 10 min = 11400 (S6 and S7, one episode). Sorted 900 3000 11400: p50 3000
        ("shop", 4, 3, 3, 3000.0, 11400.0, 0),
    ]
    assert rows(con, "time-to-restore", deploy_stages=["Deploy-*"]) == [
        ("api", 1, 1, 0, None, None, 1),  # A3's Deploy-us; no deployment of api after it
    ]


def test_time_to_restore_in_a_window(con):
    assert rows(con, "time-to-restore", until=at("01-14 00:00")) == [
        # api's failure (01-14 00:50) is after until
        ("batch", 1, 1, 1, 7200.0, 7200.0, 0),
        # S8 deploys after until: S6 + S7's episode is open at until.
        # Restored 3000 and 900 -> p50 1950
        ("shop", 4, 3, 2, 1950.0, 3000.0, 1),
    ]
    assert rows(con, "time-to-restore", since=at("01-13 23:00")) == [
        ("api", 1, 1, 0, None, None, 1),
        # S7 in the window, but its episode opened at S6's failure (22:30), before it
        ("shop", 1, 0, 0, None, None, 0),
    ]


# --- dora ----------------------------------------------------------------------------------


def test_dora(con):
    # columns: pipeline, deployments, per_week, frequency_band, p50_lead_time_s,
    # lead_time_band, change_failure_rate, change_failure_rate_band, p50_restore_s, restore_band
    # (per pipeline: the figures of the tests above)
    assert rows(con, "dora") == [
        # 1.0 >= 1: high; 174900 < 7 d: high; 0.333 > 0.15: low; no restored episode
        ("api", 2, 1.0, "high", 174900.0, "high", round(1 / 3, 9), "low", None, None),
        # 0.7 >= 7/30: medium; 10 d < 30 d: medium; 0.1429 <= 0.15: medium; 7200 < 1 d: high
        ("batch", 6, 0.7, "medium", 864000.0, "medium", round(1 / 7, 9), "medium", 7200.0,
         "high"),
        # 14 >= 7: elite; 6000 < 1 d: elite; 0.571: low; 3000 < 1 h: elite
        ("shop", 4, 14.0, "elite", 6000.0, "elite", round(4 / 7, 9), "low", 3000.0, "elite"),
        # 2 + 6 + 4 = 12 deployments; window from the first start of the selected pipelines
        # (batch, 2025-11-16; not legacy's 2025-10-01: no attempt) = 60 d: 12 * 7 / 60 = 1.4.
        # Lead times sorted 1800 6000 8400 88200 261600 | 691200 777600 864000 950400 1036800:
        # p50 (261600 + 691200) / 2 = 476400 < 7 d: high. (1 + 1 + 4) / (3 + 7 + 7) = 6 / 17.
        # Restores 900 3000 7200 11400: p50 (3000 + 7200) / 2 = 5100 < 1 d: high
        ("(all)", 12, 1.4, "high", 476400.0, "high", round(6 / 17, 9), "low", 5100.0, "high"),
    ]  # fmt: skip


def test_dora_of_two_stages_one_pipeline_and_a_window(con):
    assert rows(con, "dora", deploy_stages=["Deploy-*"]) == [
        # 3 eu + 2 us = 5 over 14 d: 2.5; lead p50 88200 (see lead-time); 1 / 6
        ("api", 5, 2.5, "high", 88200.0, "high", round(1 / 6, 9), "low", None, None),
        ("(all)", 5, 2.5, "high", 88200.0, "high", round(1 / 6, 9), "low", None, None),
    ]
    shop = ("shop", 4, 14.0, "elite", 6000.0, "elite", round(4 / 7, 9), "low", 3000.0, "elite")
    # '(all)' of one pipeline is that pipeline (window from shop's own first start)
    assert rows(con, "dora", pipelines=["s*"]) == [shop, ("(all)", *shop[1:])]
    assert rows(con, "dora", since=at("01-08 00:00"), until=NOW) == [
        # A2 (01-08 00:40) and A3 F over 7 d: 1.0; lead 261600; 1 / 2; A3 unrestored
        ("api", 1, 1.0, "high", 261600.0, "high", 0.5, "low", None, None),
        # B5 F, B6, B7: 2 * 7 / 7 = 2.0; lead B6 12 d = 1036800 < 30 d: medium; 1 / 3
        ("batch", 2, 2.0, "high", 1036800.0, "medium", round(1 / 3, 9), "low", 7200.0,
         "high"),
        ("shop", 4, 4.0, "high", 6000.0, "elite", round(4 / 7, 9), "low", 3000.0, "elite"),
        # 7 over 7 d: 7.0 elite; leads 1800 6000 8400 261600 1036800 -> 8400: elite;
        # (1 + 1 + 4) / (2 + 3 + 7) = 0.5; restores 900 3000 7200 11400 -> 5100
        ("(all)", 7, 7.0, "elite", 8400.0, "elite", 0.5, "low", 5100.0, "high"),
    ]  # fmt: skip


def test_band_macros_at_their_thresholds(con):
    def bands(macro_name: str, values: list[str]) -> list:
        sql = "SELECT " + ", ".join(f"{macro_name}({v})" for v in values)
        return list(macro(con, sql)[0])

    # per week: >= 7 elite, >= 1 high, >= 7/30 medium
    assert bands("frequency_band", [
        "7", "6.999", "1", "0.999", "7 / 30", "0.233", "0", "NULL",
    ]) == ["elite", "high", "high", "medium", "medium", "low", "low", None]  # fmt: skip
    # lead time: < 1 d elite, < 7 d high, < 30 d medium
    assert bands("lead_time_band", [
        "0", "86399.999", "86400", "604799", "604800", "2591999", "2592000", "NULL",
    ]) == ["elite", "elite", "high", "high", "medium", "medium", "low", None]  # fmt: skip
    # change failure rate: <= 0.05 elite, <= 0.10 high, <= 0.15 medium; as doubles too
    assert bands("change_failure_rate_band", [
        "0", "0.05", "0.0501", "0.10", "0.1001", "0.15", "0.1501", "1", "NULL",
        "1 / 20", "2 / 20", "3 / 20", "CAST(0.15 AS DOUBLE)",
    ]) == [
        "elite", "elite", "high", "high", "medium", "medium", "low", "low", None,
        "elite", "high", "medium", "medium",
    ]  # fmt: skip
    # time to restore: < 1 h elite, < 1 d high, < 7 d medium
    assert bands("restore_band", [
        "0", "3599.999", "3600", "86399", "86400", "604799", "604800", "NULL",
    ]) == ["elite", "elite", "high", "high", "medium", "medium", "low", None]  # fmt: skip


def test_an_automatic_rollback_to_a_deployment_does_not_roll_it_back(tmp_path, monkeypatch):
    """D2's Deploy fails; CodePipeline rolls back to D1 (R1 targets D1): one failure, D2's.
    D1 is not rolled back by the rollback that restores it."""
    monkeypatch.setitem(DEFINITIONS, "auto", {1: [("Deploy", "Release", "Deploy")]})
    auto = Pipeline("auto")
    auto.run(
        "D1",
        "Succeeded",
        "01-14 00:00",
        "01-14 00:10",
        [("Deploy", "Succeeded", "01-14 00:00", "01-14 00:10")],
    )
    auto.run(
        "D2",
        "Failed",
        "01-14 01:00",
        "01-14 01:10",
        [("Deploy", "Failed", "01-14 01:00", "01-14 01:10")],
    )
    auto.run("R1", "Succeeded", "01-14 01:11", "01-14 01:20",
             [("Deploy", "Succeeded", "01-14 01:11", "01-14 01:20")],
             kind="ROLLBACK", target="D1")  # fmt: skip
    auto.write(tmp_path)
    con = queries.connect(tmp_path)
    # attempts D1 S, D2 F: (1 failed + 0 rolled back) / 2 = 0.5; R1 is one rollback
    assert rows(con, "change-failure-rate") == [("auto", 2, 1, 0, 1, 0.5)]
    # D2 fails at 01:10 and R1's deployment restores at 01:20: 600 s
    assert rows(con, "time-to-restore") == [("auto", 1, 1, 1, 600.0, 600.0, 0)]
    # the same rollback targeting another execution rolls D1 back: (1 + 1) / 2
    auto.rows["executions"][-1]["rollback_target_execution_id"] = "D0"
    auto.write(tmp_path / "other")
    con = queries.connect(tmp_path / "other")
    assert rows(con, "change-failure-rate") == [("auto", 2, 1, 1, 1, 1.0)]


def test_trend_counts_deployments_in_the_week_of_their_time(con):
    got = [(r[0], r[1].isoformat(), r[7]) for r in rows(con, "trend")]
    assert got == [
        # A1 01-01 00:30 (Thu: week of Mon 12-29), A2 01-08 00:40 (week of 01-05);
        # A3's Deploy-us failed (week of 01-12): executions there, 0 deployments
        ("api", "2025-12-29", 1), ("api", "2026-01-05", 1), ("api", "2026-01-12", 0),
        # B1..B4 on Sundays (weeks of 11-10, 11-24, 12-08, 12-22), B6 01-10 (Sat, week of
        # 01-05; B5 failed there), B7 01-12 (Mon)
        ("batch", "2025-11-10", 1), ("batch", "2025-11-24", 1), ("batch", "2025-12-08", 1),
        ("batch", "2025-12-22", 1), ("batch", "2026-01-05", 1), ("batch", "2026-01-12", 1),
        # legacy has no deploy stage: its week shows executions only
        ("legacy", "2025-09-29", 0),
        # S1 S3 S5 S8 deploy in the week of 01-12 (R1's is a rollback deployment)
        ("shop", "2026-01-12", 4),
    ]  # fmt: skip


def test_the_cache_recomputes_a_pipelines_attempts_when_a_later_recording_changes_them(
    tmp_path,
):
    """The cache stores the default rule's attempts; what a collector writes later changes
    earlier rows: a ROLLBACK execution rolls back the deployment before it, a new
    definition moves the default deploy stage. Each refresh with the written files gives
    the rows the Parquet views compute."""
    api = Pipeline("api")
    for eid, day in (("A1", "01-01"), ("A2", "01-08")):
        api.run(eid, "Succeeded", f"{day} 00:00", f"{day} 00:30", [
            ("Build", "Succeeded", f"{day} 00:00", f"{day} 00:10"),
            ("Deploy-eu", "Succeeded", f"{day} 00:10", f"{day} 00:20"),
            ("Deploy-us", "Succeeded", f"{day} 00:20", f"{day} 00:30"),
        ])  # fmt: skip
    api.write(tmp_path)
    cache.build(tmp_path)

    def attempts(**kw) -> list[tuple]:
        sql = "SELECT stage, execution_id, status, deploy_time, rolled_back_at " \
              "FROM deploy_attempts([]) ORDER BY ALL"  # fmt: skip
        got = [macro(queries.connect(tmp_path, cache=c), sql) for c in (True, False)]
        assert got[0] == got[1]  # the cache's stored rows == the views' computed ones
        failures = "SELECT * FROM failure_restores([]) ORDER BY ALL"
        stored, computed = (macro(queries.connect(tmp_path, cache=c), failures) for c in (1, 0))
        assert stored == computed
        return got[0]

    assert attempts() == [
        ("Deploy-us", "A1", "Succeeded", at("01-01 00:30"), None),
        ("Deploy-us", "A2", "Succeeded", at("01-08 00:30"), None),
    ]
    # A ROLLBACK execution (no stage run yet, targeting A1) starts after A2's deployment:
    # A2 is rolled back at its start. Only an executions file is written.
    later = Pipeline("api")
    later.run("R1", "InProgress", "01-09 00:00", None, [], kind="ROLLBACK", target="A1")
    written = write_rows(tmp_path, "executions", later.rows["executions"], pipeline="api",
                         run_id="run-2")  # fmt: skip
    cache.refresh(tmp_path, written=written)
    assert attempts() == [
        ("Deploy-us", "A1", "Succeeded", at("01-01 00:30"), None),
        ("Deploy-us", "A2", "Succeeded", at("01-08 00:30"), at("01-09 00:00")),
    ]
    # Version 2 drops Deploy-us: the default deploy stage is now Deploy-eu (A1 and A2
    # deployed there at 00:20; R1 still rolls A2 back). Only a pipeline_actions file.
    defs = [
        {**common_columns(NOW), "dt": NOW.date(), "pipeline_version": 2, "stage": stage,
         "stage_index": i, "action": action, "action_index": 0, "category": category}
        for i, (stage, action, category) in enumerate(DEFINITIONS["api"][1][:2])
    ]  # fmt: skip
    written = write_rows(tmp_path, "pipeline_actions", defs, pipeline="api", run_id="run-3")
    cache.refresh(tmp_path, written=written)
    assert attempts() == [
        ("Deploy-eu", "A1", "Succeeded", at("01-01 00:20"), None),
        ("Deploy-eu", "A2", "Succeeded", at("01-08 00:20"), at("01-09 00:00")),
    ]
