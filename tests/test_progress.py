"""What a run shows while it works (recorder/progress.py), the order it works in across
runs (collect.work_order), and what `cprec collect --plan` says before it starts
(recorder/plan.py), against what a run then does."""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import timedelta

from click.testing import CliRunner
from conftest import SIM_NOW as NOW
from conftest import run

from recorder import collect as collect_mod
from recorder.cli import main
from recorder.client import CallStats
from recorder.config import CollectConfig
from recorder.known import Known
from recorder.plan import plan
from recorder.progress import Progress, duration
from recorder.simulator import Account, Faults, SimulatorServer


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_line_counts_executions_rates_and_an_eta():
    clock, stats = Clock(), CallStats()
    progress = Progress(4, stats, clock)
    assert progress.line() == "executions 0 / ~0 (0 of 4 pipelines listed)"
    progress.listing_ended(100)
    progress.listing_ended(50)
    for _ in range(30):
        progress.fetched_one()
    stats.attempts["GetPipelineExecution"] = 200
    stats.throttles["GetPipelineExecution"] = 6
    clock.t = 10.0
    # to fetch: 150 listed + 2 unlisted pipelines x the mean 75 = 300 (approximate);
    # over the 10 s: 200 attempts = 20.0 req/s, 6 throttles = 36/min, 30 executions =
    # 3/s, so (300 - 30) / 3 = 90 s left
    assert progress.line() == (
        "executions 30 / ~300 (2 of 4 pipelines listed) · 20.0 req/s · 36 throttles/min"
        " · ETA ~1 min 30 s"
    )
    progress.listing_ended(0)
    progress.listing_ended(10)
    clock.t = 20.0
    # every pipeline listed: 160 exactly; rates over the 20 s since the first sample
    # (less than 30 s): 200 / 20 = 10.0 req/s, 6 x 60 / 20 = 18/min, 30 / 20 = 1.5
    # executions/s: (160 - 30) / 1.5 = 86.7 s
    assert progress.line() == (
        "executions 30 / 160 · 10.0 req/s · 18 throttles/min · ETA 1 min 27 s"
    )
    clock.t = 60.0
    # samples at 0, 10, 20, 60: those more than 30 s before the latest one but the
    # first of the window go; the window starts at 20 s: no attempts, no executions
    assert progress.line() == "executions 30 / 160 · 0.0 req/s · 0 throttles/min"


def test_durations_read_as_a_person_writes_them():
    assert [duration(s) for s in (0.4, 59.6, 61, 3599, 3600, 11_100)] == [
        "0 s", "1 min 00 s", "1 min 01 s", "59 min 59 s", "1 h 00 min", "3 h 05 min"
    ]  # fmt: skip


def test_pipelines_whose_oldest_unrecorded_execution_is_oldest_go_first():
    known = {
        "current": Known(watermark=NOW - timedelta(minutes=5)),
        "half-done": Known(watermark=NOW - timedelta(days=200)),
        "older-half": Known(watermark=NOW - timedelta(days=300)),
    }
    names = ["current", "half-done", "new-a", "new-b", "older-half"]
    # never recorded (12 months to fetch) by name, then by watermark, oldest first
    assert collect_mod.work_order(names, known) == [
        "new-a", "new-b", "older-half", "half-done", "current"
    ]  # fmt: skip


def test_a_heartbeat_line_says_how_far_a_run_is(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(collect_mod, "HEARTBEAT_S", 0.2)
    acct = Account(pipelines=2, days=3, seed=7, now=NOW)
    with SimulatorServer(acct, Faults(latency_ms=20)) as srv:
        assert run(tmp_path, srv, acct, workers=1, quiet=False).exit_code == 0
    beats = [line for line in capsys.readouterr().err.splitlines() if "pipelines done;" in line]
    assert beats, "a run of a few seconds logs a line every 0.2 s"
    pattern = (
        r"region=us-east-1: [01] of 2 pipelines done; executions \d+ / ~?\d+"
        r"( \([012] of 2 pipelines listed\))?( · [\d.]+ req/s · \d+ throttles/min"
        r"( · ETA ~?\d+ (s|min \d\d s))?)?"
    )
    assert all(re.search(pattern, line) for line in beats), beats


def test_the_plan_names_the_calls_a_first_run_then_makes(tmp_path):
    acct = Account(pipelines=6, days=10, seed=7, now=NOW)
    with SimulatorServer(acct) as srv:
        estimate = plan(tmp_path, CollectConfig(endpoint_url=srv.endpoint_url,
                                                regions=["us-east-1"], now=acct.now))  # fmt: skip
        planned = srv.calls.total()
        result = run(tmp_path, srv, acct)
    (region,) = estimate.regions
    assert region.made == planned  # every request the plan sent, as the server counted
    exact = ("GetCallerIdentity", "ListPipelines", "GetPipelineState", "GetPipeline",
             "ListPipelineExecutions", "GetPipelineExecution")  # fmt: skip
    assert {op: region.calls[op] for op in exact} == {op: result.api_calls[op] for op in exact}
    assert region.to_fetch == result.api_calls["GetPipelineExecution"] == 343
    # The children's pages are estimated: per pipeline, ceil(executions x actions (rules)
    # of its definition / 100 a page); executions that fail run fewer actions, so the run
    # made fewer: here 16 and 2.
    pages = Counter()
    for name in acct.pipeline_names():
        stages = acct.call("GetPipeline", {"name": name})["pipeline"]["stages"]
        n = executions_of(acct, name)
        actions = sum(len(st["actions"]) for st in stages)
        rules = sum(len(c["rules"]) for st in stages for when in ("beforeEntry", "onSuccess",
                    "onFailure") for c in (st.get(when) or {}).get("conditions", []))  # fmt: skip
        pages["ListActionExecutions"] += math.ceil(n * actions / 100)
        pages["ListRuleExecutions"] += math.ceil(n * rules / 100)
    assert pages == {"ListActionExecutions": 19, "ListRuleExecutions": 3}
    assert {op: region.calls[op] for op in pages} == pages
    assert {op: result.api_calls[op] for op in pages} == {"ListActionExecutions": 16,
                                                           "ListRuleExecutions": 2}  # fmt: skip
    # Time at 5/s per operation: the busiest bucket (GetPipelineExecution, 343) over 5,
    # unless the plan's own rate (its calls over its seconds) says it is slower still.
    assert estimate.seconds_at(5.0) == max(
        343 / 5.0, region.calls.total() / (region.made / region.seconds)
    )


def executions_of(acct: Account, name: str) -> int:
    n, token = 0, None
    while True:
        params = {"pipelineName": name, "maxResults": 100}
        page = acct.call(
            "ListPipelineExecutions", {**params, **({"nextToken": token} if token else {})}
        )
        n += len(page["pipelineExecutionSummaries"])
        if not (token := page.get("nextToken")):
            return n


def test_the_plan_after_a_run_cut_short_counts_what_is_left(tmp_path):
    acct = Account(pipelines=3, days=10, seed=5, now=NOW)
    with SimulatorServer(acct, Faults(latency_ms=30)) as srv:
        capped = run(tmp_path, srv, acct, max_duration=1.5, workers=1)
        assert capped.pipelines_unfinished
        estimate = plan(tmp_path, CollectConfig(endpoint_url=srv.endpoint_url,
                                                regions=["us-east-1"], now=acct.now))  # fmt: skip
        rest = run(tmp_path, srv, acct)
    (region,) = estimate.regions
    held = sum(executions_of(acct, name) for name in acct.pipeline_names())
    # what is left: fewer than the account holds (the capped run recorded some), exactly
    # what the next run fetches
    assert 0 < region.to_fetch < held
    assert region.to_fetch == rest.api_calls["GetPipelineExecution"]


def test_cprec_collect_plan_prints_and_writes_nothing(tmp_path):
    acct = Account(pipelines=2, days=3, seed=7, now=NOW)
    root = tmp_path / "data"
    with SimulatorServer(acct) as srv:
        result = CliRunner().invoke(main, [
            "collect", "--plan", "--plan-rate", "2", "--data", str(root), "--since", "2026-10-01",
            "--endpoint-url", srv.endpoint_url, "--region", "us-east-1",
        ], env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not root.exists()
    lines = result.output.splitlines()
    assert lines[0] == "123456789012 us-east-1: 2 pipelines, back to 2026-10-01"
    pattern = r"time: ~\d+ (s|min \d\d s) at 2 requests/s per operation \(AWS documents no "
    assert re.fullmatch(pattern + r"CodePipeline rate\); 8 workers", lines[-1])


def test_the_plan_skips_a_pipeline_deleted_while_it_lists_and_a_refusal_is_one_line(tmp_path):
    acct = Account(pipelines=3, days=3, seed=7, now=NOW)
    gone = acct.pipeline_names()[0]
    with SimulatorServer(acct, faults=Faults(vanish=(gone,))) as srv:
        estimate = plan(tmp_path, CollectConfig(endpoint_url=srv.endpoint_url,
                                                regions=["us-east-1"], now=acct.now))  # fmt: skip
    (region,) = estimate.regions
    # the two left: one GetPipelineState each, as a run would make
    assert region.pipelines == 3 and region.calls["GetPipelineState"] == 2
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    with SimulatorServer(acct, faults=Faults(access_denied=True)) as srv:
        result = CliRunner().invoke(main, ["collect", "--plan", "--data", str(tmp_path),
                                           "--endpoint-url", srv.endpoint_url,
                                           "--region", "us-east-1"], env=env)  # fmt: skip
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: cannot plan 123456789012 us-east-1: AccessDeniedException: User: "
        "arn:aws:iam::123456789012:user/simulator is not authorized to perform: "
        "codepipeline:ListPipelines because no identity-based policy allows the "
        "codepipeline:ListPipelines action"
    ]


def test_a_plan_rate_without_plan_is_refused_before_anything_runs(tmp_path):
    result = CliRunner().invoke(main, ["collect", "--plan-rate", "5", "--data", str(tmp_path),
                                       "--region", "us-east-1"])  # fmt: skip
    assert result.exit_code == 2
    assert result.output == "Error: --plan-rate is for --plan: add --plan, or drop --plan-rate\n"
    assert list(tmp_path.iterdir()) == []
