"""Collection against rate limits as AWS enforces them (token buckets), and against
throttles drawn at random: how close to the granted rate does the collector run?

    python bench/ratelimit.py [--pipelines 12] [--days 30] [--rate 5] [--burst 10]
                              [--neighbour-share 0] [--random] [--tree DIR]
                              [--label L] [--json FILE]
    python bench/ratelimit.py --report FILE... [--out bench/out/ratelimit.md]

One first collection (a backfill) of the simulated account (seed 7, clock fixed at
2026-11-01T00:00:00Z) in a child process calling `recorder.collect.collect` (8 workers,
the default). The simulator's buckets are per account, region and operation, so the
least time the granted rate allows is that of the busiest operation: max over
operations of (calls - burst) / (rate x (1 - neighbour share) x the share of attempts
random faults leave useful). Printed: wall time,
that bound and their ratio, calls and attempts by operation, throttles. `--random` adds
the random faults of bench/faults.py (throttle 0.3, error 0.05, drop 0.05) on top.

`--tree DIR` runs the collector of another checkout (say a worktree of the commit
before a change: the "before" column); the simulator is always this tree's.
`--json FILE` appends the run as one JSON line, with the server's view of the run in
10-second buckets (attempts answered, throttled by the bucket, throttled at random)
and, when the collector has one, its pacer's rate at each change. `--plan` runs
`cprec collect --plan` first and compares its estimate at the rate with the measured
time. `--report` renders those lines as the tables of bench/RESULTS.md section 7: each
scenario before and after side by side, and the rate over time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from common import OUT, REPO, dummy_credentials

from recorder.simulator import Account, Faults, SimulatorServer

NOW = "2026-11-01T00:00:00+00:00"
BUCKET_S = 10
TIMELINE_ROWS = 12
RANDOM = {"throttle_rate": 0.3, "error_rate": 0.05, "drop_rate": 0.05}
# The collector in a child process (its own GIL). Pacers are found by wrapping the class
# where the tree has one (recorder/pacing.py; the trees before it used adaptive mode);
# the busiest one's rate over time is kept (GetPipelineExecution's).
CHILD = """
import json, sys
from datetime import datetime
import recorder.client
from recorder.collect import collect
try:
    from recorder.config import CollectConfig
    def collecting(root, **kw):
        return collect(root, CollectConfig(**kw))
except ImportError:  # --tree of a checkout from before CollectConfig: collect took keywords
    collecting = collect
pacers = []
try:
    import recorder.pacing as pacing
except ImportError:
    pacing = None
if pacing is not None:
    class Kept(pacing.Pacer):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            pacers.append(self)
    pacing.Pacer = Kept
r = collecting(sys.argv[1], endpoint_url=sys.argv[2], regions=["us-east-1"],
               now=datetime.fromisoformat(sys.argv[3]))
print(json.dumps({"exit_code": r.exit_code, "calls": dict(r.api_calls),
                  "attempts": dict(r.api_attempts), "throttles": r.throttles,
                  "pacer": max((p.history for p in pacers), key=len, default=None)}))
"""


# `cprec collect --plan` in a child, before the collection (--plan)
PLAN = """
import json, sys
from datetime import datetime
from recorder.plan import plan
kw = dict(endpoint_url=sys.argv[2], regions=["us-east-1"], now=datetime.fromisoformat(sys.argv[3]))
try:
    from recorder.config import CollectConfig
    p = plan(sys.argv[1], CollectConfig(**kw))
except ImportError:  # --tree of a checkout from before CollectConfig: plan took keywords
    p = plan(sys.argv[1], **kw)
print(json.dumps({"estimate": p.seconds_at(float(sys.argv[4])), "made": p.regions[0].made}))
"""


class Sampler(threading.Thread):
    """The server's counters every BUCKET_S seconds: what the account saw, whichever
    collector ran."""

    def __init__(self, srv: SimulatorServer) -> None:
        super().__init__(daemon=True)
        self.srv, self.stop, self.rows = srv, threading.Event(), []

    def snapshot(self) -> tuple[int, int, int]:
        return (self.srv.calls.total(), self.srv.faulted["rate"], self.srv.faulted["throttle"])

    def run(self) -> None:
        t0, last = time.perf_counter(), self.snapshot()
        while not self.stop.wait(BUCKET_S):
            now = self.snapshot()
            self.rows.append([round(time.perf_counter() - t0)] +
                             [b - a for a, b in zip(last, now, strict=True)])  # fmt: skip
            last = now


def scenario(args) -> str:
    extra = f", neighbour {args.neighbour_share:g}" if args.neighbour_share else ""
    extra += ", random faults" if args.random else ""
    return f"{args.pipelines} × {args.days}, {args.rate:g} req/s (burst {args.burst:g}{extra})"


def measure(args) -> dict:
    dummy_credentials()
    faults = RANDOM if args.random else {}
    acct = Account(pipelines=args.pipelines, days=args.days, seed=7,
                   now=datetime.fromisoformat(NOW))  # fmt: skip
    tree = Path(args.tree or REPO).resolve()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with (
        SimulatorServer(acct, Faults(api_rate=args.rate, api_burst=args.burst,
                                     neighbour_share=args.neighbour_share, **faults)) as srv,
        tempfile.TemporaryDirectory() as tmp,
    ):  # fmt: skip
        planned = None
        if args.plan:  # then wait for the plan's tokens to come back: the run starts fresh
            proc = subprocess.run([sys.executable, "-c", PLAN, f"{tmp}/data", srv.endpoint_url,
                                   NOW, str(args.rate)], cwd=tree, env=env, capture_output=True,
                                  text=True, check=True)  # fmt: skip
            planned = json.loads(proc.stdout.strip().splitlines()[-1])
            time.sleep(args.burst / args.rate + 1)
        sampler = Sampler(srv)
        sampler.start()
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, f"{tmp}/data", srv.endpoint_url, NOW],
                              cwd=tree, env=env, capture_output=True, text=True)  # fmt: skip
        wall = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
    if not proc.stdout.strip():
        sys.exit(f"collector failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["exit_code"]:
        print(proc.stderr[-2000:], file=sys.stderr)
    # A token is spent by every attempt the bucket lets through, and random faults
    # (throttle, then 5xx, then a dropped answer, drawn independently) waste some.
    useful = (
        (1 - faults.get("throttle_rate", 0))
        * (1 - faults.get("error_rate", 0))
        * (1 - faults.get("drop_rate", 0))
    )
    granted = args.rate * (1 - args.neighbour_share) * useful
    bound = max((n - args.burst) / granted for n in out["calls"].values())
    return {"scenario": scenario(args), "label": args.label, "wall": wall, "bound": bound,
            "calls": sum(out["calls"].values()), "attempts": sum(out["attempts"].values()),
            "throttles": out["throttles"], "exit_code": out["exit_code"],
            "by_operation": out["calls"], "timeline": sampler.rows, "pacer": out["pacer"],
            "rate": args.rate, "neighbour_share": args.neighbour_share,
            "plan": planned}  # fmt: skip


def minimum(scenario: str) -> int:
    """The fewest calls that return the scenario's data (bench/collection.py's
    api_minimum: full pages, one GetPipelineExecution per execution, one
    GetPipelineState per pipeline; GetPipeline and STS not counted)."""
    from collection import api_minimum

    pipelines, days = (int(x) for x in scenario.split(",")[0].split(" × "))
    acct = Account(pipelines=pipelines, days=days, seed=7, now=datetime.fromisoformat(NOW))
    return sum(api_minimum(acct, acct.pipeline_names()).values())


def report(paths: list[Path]) -> str:
    runs = [json.loads(line) for p in paths for line in p.read_text().splitlines() if line]
    by_scenario: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in runs:
        by_scenario[r["scenario"]][r["label"]] = r
    labels = list(dict.fromkeys(r["label"] for r in runs))
    lines = [
        "| scenario | calls | made/min | bound | " + " | ".join(
            f"{lb}: wall | {lb}: wall/bound | {lb}: attempts | {lb}: throttles" for lb in labels
        ) + " |",
        "|---|---|---|---|" + "---|---|---|---|" * len(labels),
    ]  # fmt: skip
    for name, got in by_scenario.items():
        first = next(iter(got.values()))
        made = {op: n for op, n in first["by_operation"].items()
                if op not in ("GetPipeline", "GetCallerIdentity")}  # fmt: skip
        cells = [name, f"{first['calls']:,}", f"{sum(made.values()) / minimum(name):.3f}",
                 f"{first['bound']:.1f} s"]  # fmt: skip
        for lb in labels:
            r = got.get(lb)
            if r is None:
                cells += ["", "", "", ""]
                continue
            cells += [f"{r['wall']:.1f} s", f"{r['wall'] / r['bound']:.2f}",
                      f"{r['attempts']:,}", f"{r['throttles']:,}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    planned = [r for r in runs if r.get("plan")]
    if planned:
        lines += [
            "",
            "`cprec collect --plan` before the run: its estimate at the rate, against "
            "the measured time.",
            "",
            "| scenario | plan's calls | estimate | measured | error |",
            "|---|---|---|---|---|",
        ]
        for r in planned:
            est = r["plan"]["estimate"]
            lines.append(
                f"| {r['scenario']} | {r['plan']['made']:,} | {est:.1f} s | "
                f"{r['wall']:.1f} s | {est / r['wall'] - 1:+.1%} |"
            )
    for name, got in by_scenario.items():
        longest = max(len(r["timeline"]) for r in got.values())
        step = max(1, math.ceil(longest / TIMELINE_ROWS))  # samples a row
        lines += ["", f"Rate over time, {name}: attempts per second the server answered "
                  f"(throttled by the bucket / at random), over {step * BUCKET_S} s; the "
                  "busiest operation's pacer at the row's end.", ""]  # fmt: skip
        lines += ["| until | " + " | ".join(f"{lb}: attempts/s (bucket/random) | {lb}: pacer"
                                            for lb in labels) + " |",
                  "|---|" + "---|---|" * len(labels)]  # fmt: skip
        for i in range(0, longest, step):
            cells = [f"{min(i + step, longest) * BUCKET_S} s"]
            for lb in labels:
                r = got.get(lb)
                rows = r["timeline"][i : i + step] if r else []
                if not rows:
                    cells += ["", ""]
                    continue
                span = len(rows) * BUCKET_S
                n, rate, rand = (sum(x[k] for x in rows) for k in (1, 2, 3))
                cells.append(f"{n / span:.1f} ({rate / span:.1f}/{rand / span:.1f})")
                paced = [v for t, v in (r["pacer"] or []) if t <= rows[-1][0]]
                cells.append(f"{paced[-1]:.1f}" if paced else "—")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipelines", type=int, default=12)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--rate", type=float, default=5.0)
    ap.add_argument("--burst", type=float, default=0.0, help="default: twice the rate")
    ap.add_argument("--neighbour-share", type=float, default=0.0)
    ap.add_argument("--random", action="store_true", help="add bench/faults.py's faults")
    ap.add_argument("--plan", action="store_true", help="run `collect --plan` first")
    ap.add_argument("--tree", help="the checkout whose collector runs (default: this one)")
    ap.add_argument("--label", default="after")
    ap.add_argument("--json", type=Path, help="append the run here as one JSON line")
    ap.add_argument("--report", type=Path, nargs="+", help="render JSON lines as markdown")
    ap.add_argument("--out", type=Path, default=OUT / "ratelimit.md")
    args = ap.parse_args()
    if args.report:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report(args.report))
        print(f"wrote {args.out}")
        return
    args.burst = args.burst or 2 * args.rate
    r = measure(args)
    print(f"{r['scenario']} [{r['label']}]: wall {r['wall']:.1f} s, bound {r['bound']:.1f} s, "
          f"ratio {r['wall'] / r['bound']:.2f}; calls {r['calls']}, attempts {r['attempts']}, "
          f"throttles {r['throttles']}, exit {r['exit_code']}")  # fmt: skip
    print("calls by operation:", json.dumps(r["by_operation"], sort_keys=True))
    if r["plan"]:
        est = r["plan"]["estimate"]
        print(
            f"plan: {est:.1f} s estimated at {args.rate:g} req/s ({r['plan']['made']} calls), "
            f"measured {r['wall']:.1f} s: {est / r['wall'] - 1:+.1%}"
        )
    if args.json:
        with args.json.open("a") as fh:
            fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
