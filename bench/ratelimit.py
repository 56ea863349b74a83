"""Collection against rate limits as AWS enforces them (token buckets), and against
throttles drawn at random: how close to the granted rate does the collector run?

    python bench/ratelimit.py [--pipelines 12] [--days 30] [--rate 5] [--burst 10]
                              [--neighbour-share 0] [--random]

One first collection (a backfill) of the simulated account (seed 7, clock fixed at
2026-11-01T00:00:00Z) in a child process calling `recorder.collect.collect`. The
simulator's buckets are per account, region and operation, so the least time the
granted rate allows is that of the busiest operation: max over operations of
(calls - burst) / (rate x (1 - neighbour share)). Printed: wall time, that bound and
their ratio, calls and attempts by operation, throttles. `--random` adds the random
faults of bench/faults.py (throttle 0.3, error 0.05, drop 0.05) on top.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime

from common import REPO, dummy_credentials

from recorder.simulator import Account, Faults, SimulatorServer

NOW = "2026-11-01T00:00:00+00:00"
CHILD = """
import json, sys
from datetime import datetime
from recorder.collect import collect
r = collect(sys.argv[1], endpoint_url=sys.argv[2], regions=["us-east-1"],
            now=datetime.fromisoformat(sys.argv[3]))
print(json.dumps({"exit_code": r.exit_code, "calls": dict(r.api_calls),
                  "attempts": dict(r.api_attempts), "throttles": r.throttles}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipelines", type=int, default=12)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--rate", type=float, default=5.0)
    ap.add_argument("--burst", type=float, default=0.0, help="default: twice the rate")
    ap.add_argument("--neighbour-share", type=float, default=0.0)
    ap.add_argument("--random", action="store_true", help="add bench/faults.py's faults")
    args = ap.parse_args()
    dummy_credentials()
    burst = args.burst or 2 * args.rate
    faults = {"throttle_rate": 0.3, "error_rate": 0.05, "drop_rate": 0.05} if args.random else {}
    acct = Account(pipelines=args.pipelines, days=args.days, seed=7,
                   now=datetime.fromisoformat(NOW))  # fmt: skip
    with (
        SimulatorServer(acct, Faults(api_rate=args.rate, api_burst=burst,
                                     neighbour_share=args.neighbour_share, **faults)) as srv,
        tempfile.TemporaryDirectory() as tmp,
    ):  # fmt: skip
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, f"{tmp}/data", srv.endpoint_url, NOW],
                              cwd=REPO, capture_output=True, text=True)  # fmt: skip
        wall = time.perf_counter() - t0
    if not proc.stdout.strip():
        sys.exit(f"collector failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    granted = args.rate * (1 - args.neighbour_share)
    bound = max((n - burst) / granted for n in out["calls"].values())
    print(f"{args.pipelines} x {args.days}, {args.rate:g} req/s per operation (burst "
          f"{burst:g}, neighbour {args.neighbour_share:g}{', random faults' if faults else ''}):"
          f" wall {wall:.1f} s, bound {bound:.1f} s, ratio {wall / bound:.2f}; "
          f"calls {sum(out['calls'].values())}, attempts {sum(out['attempts'].values())}, "
          f"throttles {out['throttles']}, exit {out['exit_code']}")  # fmt: skip
    print("calls by operation:", json.dumps(out["calls"], sort_keys=True))


if __name__ == "__main__":
    main()
