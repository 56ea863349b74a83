"""Items 1, 2, 4: collection vs the simulator, flatten/write rows/s, peak memory, cron files."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from common import BENCH, OUT, REPO, Section, best_of, du, dummy_credentials, ratio, secs
from gen import NOW

LATENCY_MS = 50


def _max_results() -> dict[str, int]:
    """The largest page each list operation allows, from botocore's service model."""
    from recorder.simulator.protocol import service_model

    m = service_model()
    out = {}
    for op in (
        "ListPipelines",
        "ListPipelineExecutions",
        "ListActionExecutions",
        "ListRuleExecutions",
    ):
        out[op] = m.operation_model(op).input_shape.members["maxResults"].metadata["max"]
    return out


def api_minimum(acct, names: list[str], since=None) -> dict[str, int]:
    """The fewest calls that return this data: full pages of every list it needs, one
    GetPipelineExecution per execution, one GetPipelineState per pipeline; GetPipeline
    (one per pipeline on a first run) is counted separately."""
    top = _max_results()
    cutoff = since.timestamp() if since else None
    m = {"ListPipelines": math.ceil(len(names) / top["ListPipelines"]) or 1}
    for op in (
        "ListPipelineExecutions",
        "ListActionExecutions",
        "ListRuleExecutions",
        "GetPipelineExecution",
        "GetPipelineState",
    ):
        m[op] = 0
    for n in names:
        ex = acct.all_executions(n)
        ids = None
        if cutoff is not None:
            summaries = _summaries(acct, n)
            ids = {s["pipelineExecutionId"] for s in summaries if s["startTime"] >= cutoff}
            ex = [e for e in ex if e["pipelineExecutionId"] in ids]
        acts = [
            a
            for a in acct.all_action_executions(n)
            if ids is None or a["pipelineExecutionId"] in ids
        ]
        rules = [
            a for a in acct.all_rule_executions(n) if ids is None or a["pipelineExecutionId"] in ids
        ]
        # One ListPipelineExecutions page is needed even to learn there is nothing new.
        m["ListPipelineExecutions"] += max(1, math.ceil(len(ex) / top["ListPipelineExecutions"]))
        m["ListActionExecutions"] += math.ceil(len(acts) / top["ListActionExecutions"])
        m["ListRuleExecutions"] += math.ceil(len(rules) / top["ListRuleExecutions"])
        m["GetPipelineExecution"] += len(ex)
        m["GetPipelineState"] += 1
    return m


def _summaries(acct, name: str) -> list[dict]:
    from gen import _pages

    return _pages(
        acct, "ListPipelineExecutions", "pipelineExecutionSummaries", {"pipelineName": name}
    )


def bench_collection(
    pipelines: int, days: float, rate: float, workers: list[int], sec: Section
) -> dict:
    """Backfill + steady state of `pipelines` pipelines at 50 ms a call, per worker count."""
    from recorder.collect import collect
    from recorder.config import CollectConfig
    from recorder.simulator import Account, Faults, SimulatorServer

    dummy_credentials()
    figures = {}
    for w in workers:
        acct = Account(pipelines=pipelines, days=int(math.ceil(days)), seed=7, now=NOW, rate=rate)
        names = acct.pipeline_names()
        since = NOW - timedelta(days=days)
        minimum = api_minimum(acct, names, since)
        root = OUT / "collect" / f"p{pipelines}-w{w}"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        with SimulatorServer(acct, faults=Faults(latency_ms=LATENCY_MS)) as srv:
            t0 = time.perf_counter()
            config = CollectConfig(
                regions=("us-east-1",), endpoint_url=srv.endpoint_url, workers=w, now=acct.now
            )
            r1 = collect(root, replace(config, since=since))
            wall1 = time.perf_counter() - t0
            calls1 = dict(srv.calls)
            acct.advance(5)
            steady_min = api_minimum_steady(acct, names, root)
            srv.calls.clear()
            t0 = time.perf_counter()
            r2 = collect(root, replace(config, now=acct.now))
            wall2 = time.perf_counter() - t0
            calls2 = dict(srv.calls)
        ok = r1.exit_code == 0 and r2.exit_code == 0 and not r1.pipelines_failed
        for label, calls, wall, mins, r in (
            ("backfill", calls1, wall1, minimum, r1),
            ("steady (+5 min)", calls2, wall2, steady_min, r2),
        ):
            cp = sum(v for k, v in calls.items() if k not in ("GetCallerIdentity",))
            made = cp - calls.get("GetPipeline", 0)
            floor = sum(mins.values())
            ideal = cp * LATENCY_MS / 1000 / w
            detail = ", ".join(
                f"{k} {calls.get(k, 0)}/{mins.get(k, '-')}"
                for k in (
                    "ListPipelines",
                    "ListPipelineExecutions",
                    "ListActionExecutions",
                    "ListRuleExecutions",
                    "GetPipelineExecution",
                    "GetPipelineState",
                )
            )
            sec.add(
                f"{pipelines} pipelines, {label}, {w} workers",
                made,
                floor,
                ratio(made, floor),
                calls.get("GetPipeline", 0),
                f"{made / pipelines:.2f}",
                secs(wall),
                secs(ideal),
                ratio(wall, ideal),
                sum(r.rows_written.values()),
                ("" if ok else "FAILED ") + detail,
            )
            figures[(label, w)] = {"calls": made, "min": floor, "wall": wall, "ideal": ideal}
    return figures


def api_minimum_steady(acct, names: list[str], root: Path) -> dict[str, int]:
    """Minimum for a run after a backfill: per pipeline one GetPipelineState and one
    ListPipelineExecutions page, plus full pages and details for what changed."""
    from recorder.known import load_known

    known = load_known(
        root,
        acct.account_id,
        acct.region,
        overlap=timedelta(0),
        open_floor=NOW - timedelta(days=365),
    )
    m = {
        "ListPipelines": 1,
        "ListPipelineExecutions": 0,
        "ListActionExecutions": 0,
        "ListRuleExecutions": 0,
        "GetPipelineExecution": 0,
        "GetPipelineState": 0,
    }
    for n in names:
        k = known.get(n)
        rec = k.executions if k else {}
        changed = set()
        for s in _summaries(acct, n):
            prev = rec.get(s["pipelineExecutionId"])
            if prev is None or prev[0] != s["status"] or prev[0] in ("InProgress", "Stopping"):
                changed.add(s["pipelineExecutionId"])
        acts = [a for a in acct.all_action_executions(n) if a["pipelineExecutionId"] in changed]
        rules = [a for a in acct.all_rule_executions(n) if a["pipelineExecutionId"] in changed]
        m["ListPipelineExecutions"] += max(1, math.ceil(len(changed) / 100))
        m["ListActionExecutions"] += math.ceil(len(acts) / 100)
        m["ListRuleExecutions"] += math.ceil(len(rules) / 100)
        m["GetPipelineExecution"] += len(changed)
        m["GetPipelineState"] += 1
    return m


# --- item 2 -----------------------------------------------------------------------


def bench_flatten_write(pipelines: int, days: int, rate: float, sec: Section) -> None:
    """rows/s of flatten_action_execution and of to_arrow + write_rows (in-process, no HTTP)."""
    from recorder.flatten import flatten_action_execution
    from recorder.schemas import to_arrow
    from recorder.simulator import Account
    from recorder.store import write_rows

    acct = Account(pipelines=pipelines, days=days, seed=7, now=NOW, rate=rate)
    t0 = time.perf_counter()
    items = [(n, d) for n in acct.pipeline_names() for d in acct.all_action_executions(n)]
    sim_s = time.perf_counter() - t0
    n = len(items)
    t0 = time.perf_counter()
    rows = [(name, flatten_action_execution(d)) for name, d in items]
    flat_s = time.perf_counter() - t0
    common = {
        "account_id": "123456789012",
        "region": "us-east-1",
        "run_id": "bench",
        "recorded_at": NOW,
    }
    t0 = time.perf_counter()
    tables = [
        to_arrow("action_executions", [{**common, **r} for _, r in rows[i : i + 50_000]])
        for i in range(0, n, 50_000)
    ]
    arrow_s = time.perf_counter() - t0
    root = OUT / "flatten-write"
    shutil.rmtree(root, ignore_errors=True)
    by_pipe: dict[str, list[dict]] = {}
    for name, r in rows:
        by_pipe.setdefault(name, []).append({**common, **r, "dt": r["start_time"].date()})
    t0 = time.perf_counter()
    for name, part in by_pipe.items():
        write_rows(root, "action_executions", part, pipeline=name, run_id="bench")
    write_s = time.perf_counter() - t0
    files, nbytes = du(root)
    del tables
    sec.add("simulator (ListActionExecutions items)", n, secs(sim_s), f"{n / sim_s:,.0f}", "")
    sec.add("flatten_action_execution", n, secs(flat_s), f"{n / flat_s:,.0f}", "")
    sec.add("to_arrow (canonical schema)", n, secs(arrow_s), f"{n / arrow_s:,.0f}", "")
    sec.add(
        "write_rows (to_arrow + zstd + fsync + rename, per pipeline/dt)",
        n,
        secs(write_s),
        f"{n / write_s:,.0f}",
        f"{files:,} files, {nbytes / 1e6:.1f} MB",
    )


RSS_CHILD = r"""
import json, os, sys, time
sys.path.insert(0, {repo!r}); sys.path.insert(0, {bench!r}); sys.path.insert(0, {tree!r})
from datetime import datetime, timedelta, UTC
import common; common.dummy_credentials()
from recorder.collect import collect
try:
    from recorder.config import CollectConfig
    def collecting(root, **kw):
        return collect(root, CollectConfig(**kw))
except ImportError:  # a baseline tree from before CollectConfig: collect took keywords
    collecting = collect
now = datetime.fromisoformat({now!r})
def hwm():  # VmHWM: ru_maxrss would include the parent's RSS at fork (kept across exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
if {baseline}:
    print(json.dumps({{"rss_kb": hwm()}})); sys.exit()
t0 = time.perf_counter()
r = collecting({root!r}, regions=["us-east-1"], endpoint_url={url!r},
               since=now - timedelta(days={days}), workers={workers}, quiet=True, now=now)
print(json.dumps({{"rss_kb": hwm(),
                  "seconds": time.perf_counter() - t0, "exit": r.exit_code,
                  "rows": sum(r.rows_written.values()),
                  "actions": r.rows_written.get("action_executions", 0)}}))
"""

SIM_CHILD = r"""
import sys; sys.path.insert(0, {repo!r}); sys.path.insert(0, {bench!r})
from datetime import datetime
from recorder.simulator import Account, SimulatorServer
acct = Account(pipelines={pipelines}, days={days}, seed=7,
               now=datetime.fromisoformat({now!r}), rate={rate})
srv = SimulatorServer(acct, port=0)
print(srv.endpoint_url, flush=True)
srv.serve_forever()
"""


def bench_memory(
    sizes: list[tuple[int, int, float]],
    workers: int,
    sec: Section,
    baseline: Path | None = None,
) -> None:
    """Peak RSS of a backfill in a subprocess (the collector alone: the simulator is another
    process, with no added latency) at each (pipelines, days, executions/day) size.

    With `baseline` (a directory holding another tree's `recorder` package, e.g. a `git
    worktree` of the commit before a change), each size is also collected by that code,
    from the same simulator process, so before and after are side by side in one run."""
    trees = {"this tree": REPO} | ({"baseline": baseline} if baseline else {})
    base = {
        label: _child(RSS_CHILD, tree=str(tree), root="", url="", days=0, workers=1, baseline=True)
        for label, tree in trees.items()
    }
    for label in trees:
        sec.add("python + recorder imported, no collection", label, *["-"] * 4,
                f"{base[label]['rss_kb'] / 1024:.0f} MB", "-", "-")  # fmt: skip
    first: dict[str, float] = {}
    for pipelines, days, rate in sizes:
        sim = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SIM_CHILD.format(
                    repo=str(REPO),
                    bench=str(BENCH),
                    pipelines=pipelines,
                    days=days,
                    now=NOW.isoformat(),
                    rate=rate,
                ),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            url = sim.stdout.readline().strip()
            for label, tree in trees.items():
                root = OUT / "memory" / f"p{pipelines}-d{days}-r{rate:g}"
                shutil.rmtree(root, ignore_errors=True)
                root.mkdir(parents=True)
                r = _child(RSS_CHILD, tree=str(tree), root=str(root), url=url, days=days,
                           workers=workers, baseline=False)  # fmt: skip
                peak = r["rss_kb"] / 1024
                above = peak - base[label]["rss_kb"] / 1024
                first.setdefault(label, above)
                sec.add(
                    f"{pipelines} pipelines × {days} days at {rate:g}/day, {workers} workers",
                    label if r["exit"] == 0 else f"{label} (exit {r['exit']})",
                    r["actions"],
                    r["rows"],
                    f"{r['rows'] / pipelines:,.0f}",
                    secs(r["seconds"]),
                    f"{peak:.0f} MB",
                    f"{above:.0f} MB",
                    f"{above / first[label]:.2f}×",
                )
        finally:
            sim.terminate()
            sim.wait()


def _child(code: str, **kw) -> dict:
    src = code.format(repo=str(REPO), bench=str(BENCH), now=NOW.isoformat(), **kw)
    out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- item 4 -----------------------------------------------------------------------


def bench_cron(
    pipelines: int,
    hours: float,
    rate: float,
    factories: dict,
    sec: Section,
    qsec: Section,
    queries_to_time: list[str],
) -> Path:
    """Collect every 5 simulated minutes for `hours`, count files, compact, count again."""
    from recorder.collect import collect
    from recorder.compact import compact
    from recorder.config import CollectConfig
    from recorder.simulator import Account, SimulatorServer

    dummy_credentials()
    start = NOW
    acct = Account(pipelines=pipelines, days=3, seed=7, now=start, rate=rate)
    root = OUT / "cron" / f"p{pipelines}-h{hours:g}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    runs = int(hours * 12)
    t0 = time.perf_counter()
    with SimulatorServer(acct) as srv:
        config = CollectConfig(regions=("us-east-1",), endpoint_url=srv.endpoint_url, workers=8)
        collect(root, replace(config, now=acct.now, since=start - timedelta(days=3)))
        files_backfill = du(root)[0]
        run_times = []
        for _ in range(runs):
            acct.advance(5)
            t1 = time.perf_counter()
            collect(root, replace(config, now=acct.now))
            run_times.append(time.perf_counter() - t1)
    cron_s = time.perf_counter() - t0
    files_before, bytes_before = du(root)
    timings_before = _time_queries(root, factories, queries_to_time, acct.now)
    t0 = time.perf_counter()
    today = (acct.now + timedelta(days=2)).date()
    res = compact(root, min_age_days=1, today=today)
    compact_s = time.perf_counter() - t0
    files_after, bytes_after = du(root)
    timings_after = _time_queries(root, factories, queries_to_time, acct.now)
    sec.add(
        f"{pipelines} pipelines, backfill 3 days then {runs} runs every 5 min ({hours:g} h)",
        files_backfill,
        files_before,
        files_after,
        f"{bytes_before / 1e6:.1f} → {bytes_after / 1e6:.1f} MB",
        f"{res.partitions} partitions, {res.rows_before:,} → {res.rows_after:,} rows",
        secs(compact_s),
        f"median run {secs(sorted(run_times)[len(run_times) // 2])}, last {secs(run_times[-1])}",
        secs(cron_s),
    )
    for (fname, q), (t_b, _) in timings_before.items():
        t_a = timings_after[(fname, q)][0]
        qsec.add(q, fname, secs(t_b), secs(t_a), ratio(t_b, t_a))
    return root


def _time_queries(root: Path, factories: dict, names: list[str], now) -> dict:
    import queries

    out = {}
    for fname, factory in factories.items():
        for q in names:

            def run(q=q, factory=factory):
                con = factory(root)
                queries.run_query(con, q, now=now)
                con.close()

            out[(fname, q)] = best_of(run, runs=3, budget_s=10)
    return out
