"""A discrete-event model of the collector's pacer, to choose its constants in seconds
rather than hours of real runs.

    python bench/pacemodel.py [--seeds 5] [--set NAME=VALUE ...]

`workers` threads each make `calls` calls in turn; an attempt takes `latency` seconds,
waits for a token of the real `recorder.pacing.Pacer` (on a simulated clock), then
meets a token bucket of R/s holding at most B (as the simulator's, its token spent
before the random draw) and a throttle drawn at random with probability p. A throttled
attempt is retried as recorder/client.py's PacedBackoff does (the first 3 retries at
once while the pacer paces, then botocore's rand x 2^(i - 3) s; before it paces,
botocore's rand x 2^(i - 1) s), at most 11 attempts; a call failing its 11th counts as
failed. Printed per scenario: the mean and worst wall time over the least the bucket
allows ((calls - B) / (R x (1 - p))), the share of attempts throttled, failed calls;
for the scenario without a bucket (R = 10,000), the wall time against the workers'
floor (attempts x latency / workers). `--set GROW=2.0` runs it with a pacing constant
changed. What it leaves out: HTTP, the GIL, per-operation buckets (one bucket here).
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics

from recorder import pacing
from recorder.client import MAX_ATTEMPTS, PacedBackoff

SCENARIOS = [
    {"R": 5, "B": 10, "p": 0.0, "calls": 400},
    {"R": 20, "B": 40, "p": 0.0, "calls": 1500},
    {"R": 5, "B": 10, "p": 0.3, "calls": 400},
    {"R": 20, "B": 40, "p": 0.3, "calls": 1500},
    {"R": 10_000, "B": 20_000, "p": 0.3, "calls": 3000, "latency": 0.02},
]


def simulate(R, B, p, calls, *, workers=8, latency=0.01, seed=1) -> dict:
    rng = random.Random(seed)
    now = [0.0]
    pacer = pacing.Pacer(lambda: now[0], lambda s: None)
    tokens, last = float(B), 0.0
    queue = [(0.0, w, 1) for w in range(workers)]  # (time, worker, attempt number)
    heapq.heapify(queue)
    left, failed, attempts, throttles = calls, 0, 0, 0
    while queue:
        when, w, attempt = heapq.heappop(queue)
        now[0] = when
        if attempt == 1:
            if left <= 0:
                continue
            left -= 1
        if pacer.rate is not None:  # Pacer.acquire, without sleeping: come back later
            pacer.tokens = min(max(1.0, pacer.rate),
                               pacer.tokens + (when - pacer.last) * pacer.rate)  # fmt: skip
            pacer.last = when
            if pacer.tokens < 1.0 - 1e-9:
                left += attempt == 1
                heapq.heappush(queue, (when + (1.0 - pacer.tokens) / pacer.rate, w, attempt))
                continue
            pacer.tokens -= 1.0
        tokens, last = min(B, tokens + (when - last) * R), when
        attempts += 1
        if tokens >= 1:
            tokens -= 1
            throttled = rng.random() < p
        else:
            throttled = True
        pacer.record(throttled=throttled)
        if not throttled:
            heapq.heappush(queue, (when + latency, w, 1))
            continue
        throttles += 1
        if attempt >= MAX_ATTEMPTS + 1:
            failed += 1
            heapq.heappush(queue, (when + latency, w, 1))
            continue
        free = PacedBackoff.FREE_RETRIES if pacer.rate is not None else 0
        delay = 0.0 if attempt <= free else rng.random() * min(2 ** (attempt - free - 1), 20)
        heapq.heappush(queue, (when + latency + delay, w, attempt + 1))
    return {"wall": now[0], "attempts": attempts, "throttles": throttles, "failed": failed,
            "bound": (calls - B) / (R * (1 - p)),
            "floor": attempts * latency / workers}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args()
    for assignment in args.set:
        name, value = assignment.split("=", 1)
        setattr(pacing, name, type(getattr(pacing, name))(value))
    for sc in SCENARIOS:
        runs = [simulate(**sc, seed=s) for s in range(1, args.seeds + 1)]
        ref = "floor" if sc["R"] >= 10_000 else "bound"
        ratios = [r["wall"] / r[ref] for r in runs]
        share = statistics.mean(r["throttles"] / r["attempts"] for r in runs)
        print(
            f"R={sc['R']:<6} p={sc['p']:<4} calls={sc['calls']:<5} wall/{ref}: mean "
            f"{statistics.mean(ratios):.2f}, worst {max(ratios):.2f}; throttled "
            f"{share:.0%} of attempts; failed calls {sum(r['failed'] for r in runs)}"
        )


if __name__ == "__main__":
    main()
