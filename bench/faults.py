"""Collection under sustained faults: does every run make progress, and does it converge?

    python bench/faults.py [--out FILE] [--runs 3] [--stock-quota]

The simulator (12 pipelines × 30 days, seed 7, clock fixed at 2026-11-01T00:00:00Z,
faults --throttle-rate 0.3 --error-rate 0.05 --drop-rate 0.05) is collected `--runs`
times into one fresh data root, and once without faults into a reference root. Each
collector run is a child process calling `recorder.collect.collect` (real botocore
backoff and adaptive rate limiter, 8 workers). After each run: executions and action
executions recorded (deduplicated views of `queries.connect(root, cache=False)`) and their
share of the reference, whether they equal the reference row by row (every column but
run_id and recorded_at), raw/dedup action_executions rows, the run's API calls, attempts,
throttles and retries from collection_runs, faults the server injected, wall time.

`--stock-quota` runs the collector with botocore's retry quota left in place (the child
replaces `recorder.client.tune_retries` with a no-op): the figures without the fix.
Markdown goes to bench/out/faults.md (faults-stock-quota.md with --stock-quota).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import botocore
import duckdb
from common import OUT, REPO, Section, dummy_credentials, secs

from recorder.simulator import Faults
from recorder.simulator.command import build_server

PIPELINES, DAYS, SEED, NOW = 12, 30, 7, "2026-11-01T00:00:00Z"
FAULTS = {"throttle_rate": 0.3, "error_rate": 0.05, "drop_rate": 0.05}
FAULT_FLAGS = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in FAULTS.items())
COMPARED = ("executions", "action_executions")
IGNORED = ("run_id", "recorded_at")
HEADER = ["run", "exit", "pipelines ok/failed", "executions", "% ref", "actions", "% ref",
          "identical", "raw/dedup", "calls", "attempts", "throttles", "retries",
          "injected t/e/d", "wall"]  # fmt: skip

# The collector, in a child process (its own GIL: the simulator serves from this one).
CHILD = """
import json, sys
from datetime import datetime
import recorder.client
from recorder.collect import collect
from recorder.config import CollectConfig
mode, root, url, now = sys.argv[1:5]
if mode == "stock":  # bench only: keep botocore's retry quota, as before the fix
    recorder.client.tune_retries = lambda client, pacer=None: None
r = collect(root, CollectConfig(endpoint_url=url, regions=["us-east-1"],
                                 now=datetime.fromisoformat(now)))
print(json.dumps({"exit_code": r.exit_code, "recorded": r.pipelines_recorded,
                  "failed": len(r.pipelines_failed), "listed": r.pipelines_listed}))
"""


def run_collector(root: Path, url: str, *, stock: bool) -> tuple[dict, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, "stock" if stock else "fixed", str(root), url, NOW],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        sys.exit(f"collector failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def connect(root: Path):
    from queries import connect as queries_connect

    return queries_connect(root, cache=False)


def columns(con, table: str) -> list[str]:
    names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    return sorted(c for c in names if c not in IGNORED)


def differing_rows(con, ref_con, table: str) -> int | str:
    """Rows in one deduplicated table and not the other (both directions, multiset)."""
    cols = columns(con, table)
    if cols != columns(ref_con, table):
        return "columns differ"
    select = ", ".join(f'"{c}"' for c in cols)
    con.register("ref_rows", ref_con.sql(f"SELECT {select} FROM {table}").to_arrow_table())
    try:
        [(n,)] = con.execute(
            f"SELECT (SELECT count(*) FROM (SELECT {select} FROM {table} "
            f"EXCEPT ALL SELECT * FROM ref_rows)) + (SELECT count(*) FROM (SELECT * FROM "
            f"ref_rows EXCEPT ALL SELECT {select} FROM {table}))"
        ).fetchall()
    finally:
        con.unregister("ref_rows")
    return n


def count(con, table: str) -> int:
    [(n,)] = con.execute(f"SELECT count(*) FROM {table}").fetchall()
    return n


def last_run(con) -> dict:
    [row] = con.execute(
        "SELECT status, pipelines_recorded, pipelines_failed, api_calls, api_attempts_json, "
        "throttles, retries, transient_errors FROM collection_runs "
        "ORDER BY started_at DESC LIMIT 1"
    ).fetchall()
    keys = ("status", "recorded", "failed", "calls", "attempts", "throttles", "retries",
            "transient")  # fmt: skip
    out = dict(zip(keys, row, strict=True))
    out["attempts"] = sum(json.loads(out["attempts"] or "{}").values())
    return out


def pct(n: int, of: int) -> str:
    return f"{100 * n / of:.1f} %" if of else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="markdown file (default bench/out/faults.md)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--stock-quota", action="store_true",
                    help="keep botocore's retry quota (the figures without the fix)")  # fmt: skip
    ap.add_argument("--pipelines", type=int, default=PIPELINES)
    ap.add_argument("--days", type=int, default=DAYS)
    args = ap.parse_args()
    dummy_credentials()
    tag = "faults-stock-quota" if args.stock_quota else "faults"
    quota = "botocore retry quota kept" if args.stock_quota else "retry quota lifted"
    out = args.out or OUT / f"{tag}.md"
    work = OUT / tag
    shutil.rmtree(work, ignore_errors=True)
    ref_root, root = work / "reference", work / "faulty"
    sim = {"pipelines": args.pipelines, "days": args.days, "seed": SEED, "now": NOW, "port": 0}
    started = time.perf_counter()

    print(f"reference: {args.pipelines} pipelines × {args.days} days, no faults", flush=True)
    with build_server(**sim) as srv:
        ref_result, ref_wall = run_collector(ref_root, srv.endpoint_url, stock=args.stock_quota)
    ref_con = connect(ref_root)
    ref = {t: count(ref_con, t) for t in COMPARED}
    ref_run = last_run(ref_con)
    print(f"  {ref} in {secs(ref_wall)}, exit {ref_result['exit_code']}", flush=True)

    runs = Section(
        f"Runs against `{FAULT_FLAGS}` ({quota})",
        note=(
            "Each run collects into the same data root. Executions/actions: deduplicated rows "
            "and share of the clean reference; identical: the deduplicated executions and "
            "action_executions equal the reference row by row (all columns but run_id and "
            "recorded_at; 'no (n)' = n rows in one and not the other); raw/dedup: "
            "raw.action_executions rows over deduplicated ones. Calls, attempts, throttles, "
            "retries: the run's collection_runs row; injected: faults the server answered."
        ),
        header=HEADER,
    )
    faults = Faults(**FAULTS, seed=SEED)
    identical, walls = [], []
    with build_server(**sim, faults=faults) as srv:
        for i in range(1, args.runs + 1):
            before = Counter(srv.faulted)
            print(f"run {i}", flush=True)
            result, wall = run_collector(root, srv.endpoint_url, stock=args.stock_quota)
            walls.append(wall)
            injected = Counter(srv.faulted) - before
            con = connect(root)
            got = {t: count(con, t) for t in COMPARED}
            diff = {t: differing_rows(con, ref_con, t) for t in COMPARED}
            raw = count(con, "raw.action_executions")
            run = last_run(con)
            con.close()
            same = all(d == 0 for d in diff.values())
            identical.append(same)
            runs.add(
                i,
                result["exit_code"],
                f"{result['recorded']}/{result['failed']}",
                got["executions"],
                pct(got["executions"], ref["executions"]),
                got["action_executions"],
                pct(got["action_executions"], ref["action_executions"]),
                "yes" if same else f"no ({diff['executions']}, {diff['action_executions']})",
                f"{raw / got['action_executions']:.3f}" if got["action_executions"] else "n/a",
                run["calls"],
                run["attempts"],
                run["throttles"],
                run["retries"],
                f"{injected['throttle']}/{injected['error']}/{injected['drop']}",
                secs(wall),
            )
    print(runs.text())

    first_pct = float(runs.rows[0][4].rstrip(" %")) if runs.rows[0][4] != "n/a" else 0.0
    last_ratio = runs.rows[-1][8]
    targets = Section(
        "Targets",
        header=["target", "measured", "met"],
    )
    first_ok = "yes" if first_pct >= 90 else "no"
    targets.add("first run ≥ 90 % of executions", runs.rows[0][4], first_ok)
    slower = walls[0] / ref_wall
    targets.add("first run ≤ 10 × the clean run's wall time",
                f"{secs(walls[0])} / {secs(ref_wall)} = {slower:.1f} ×",
                "yes" if slower <= 10 else "no")  # fmt: skip
    targets.add(
        f"after {args.runs} runs: 100 % and identical to the clean run",
        f"{runs.rows[-1][4]}, identical: {runs.rows[-1][7]}",
        "yes" if identical[-1] else "no",
    )
    targets.add(
        "raw/dedup action_executions ≤ 1.1",
        last_ratio,
        "yes" if last_ratio != "n/a" and float(last_ratio) <= 1.1 else "no",
    )
    print(targets.text())

    total = time.perf_counter() - started
    lines = [
        f"# Collection under faults ({quota})",
        "",
        f"`python {' '.join(sys.argv)}`, "
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {secs(total)} in all. Simulator: "
        f"{args.pipelines} pipelines × {args.days} days, seed {SEED}, now {NOW}. "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, botocore "
        f"{botocore.__version__}, DuckDB {duckdb.__version__}.",
        "",
        f"Reference (no faults): {ref['executions']} executions, {ref['action_executions']} "
        f"action executions, {ref_run['calls']} calls, {secs(ref_wall)}, exit "
        f"{ref_result['exit_code']}.",
        "",
        runs.markdown(),
        targets.markdown(),
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
