"""Named-query latency of two checkouts side by side: before/after a change, same machine, one run.

    python bench/querycompare.py --before /path/to/old/checkout --before-root ROOT_A \
        --after-root ROOT_B [--runs 3] [--cap 60] [--out FILE.md]

Each (query, checkout) pair runs in a fresh process with that checkout first on
sys.path: `queries.connect(root, cache=True)` then `queries.run_query(...)`, best of
`--runs` with a fresh connection each time (connect included), after one warm-up that
brings the cache file into the OS page cache. The two checkouts alternate query by
query, so load from other jobs falls on both. A run slower than `--cap` seconds, or
one that fails (a DuckDB spill is capped at 8 GiB to keep the disk), is reported as
"> cap". The roots may differ (a cache layout change needs a
cache built by each checkout); both must hold the same rows.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from datetime import UTC, datetime
import queries
root, name, runs = sys.argv[2], sys.argv[3], int(sys.argv[4])
now = datetime(2026, 5, 1, tzinfo=UTC)  # bench/gen.py NOW
best, rows = None, None
for i in range(runs + 1):  # the first is the warm-up
    t = time.perf_counter()
    con = queries.connect(root, cache=True)
    con.execute("SET max_temp_directory_size = '8GiB'")  # a runaway spill fails, disk kept
    rows = queries.run_query(con, name, now=now).num_rows
    con.close()
    d = time.perf_counter() - t
    if i:
        best = d if best is None else min(best, d)
print(f"{best} {rows}")
"""


def run(checkout: Path, root: Path, name: str, runs: int, cap: float) -> tuple[float | None, int]:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(checkout), str(root), name, str(runs)],
            capture_output=True, text=True, timeout=cap * (runs + 1) + 30, env=env,
            cwd=checkout, check=True,
        ).stdout.split()  # fmt: skip
    except subprocess.TimeoutExpired:
        return None, -1
    except subprocess.CalledProcessError:  # e.g. the spill limit: reported like the cap
        return None, -1
    return float(out[0]), int(out[1])


def secs(t: float | None, cap: float) -> str:
    if t is None:
        return f"> {cap:g} s"
    return f"{t * 1000:.0f} ms" if t < 1 else f"{t:.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--before-root", type=Path, required=True)
    ap.add_argument("--after", type=Path, default=HERE.parent)
    ap.add_argument("--after-root", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cap", type=float, default=60)
    ap.add_argument("--only", nargs="*", help="query names (default: every named query)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(args.after))
    import queries

    names = args.only or list(queries.named_queries())
    lines = [
        f"| query | before ({args.before.name}) | after ({args.after.name}) | after/before | "
        "rows | < 1 s |",
        "|---|---|---|---|---|---|",
    ]
    started = time.time()
    for name in names:
        b, rb = run(args.before, args.before_root, name, args.runs, args.cap)
        a, ra = run(args.after, args.after_root, name, args.runs, args.cap)
        if -1 not in (rb, ra) and rb != ra:
            sys.exit(f"{name}: {rb} rows before, {ra} after: not the same answer")
        ratio = f"{a / b:.2f}×" if a is not None and b else "-"
        ok = "yes" if a is not None and a < 1 else "no"
        lines.append(
            f"| {name} | {secs(b, args.cap)} | {secs(a, args.cap)} | {ratio} | {ra} | {ok} |"
        )
        print(lines[-1], flush=True)
    load = os.getloadavg()
    lines.append("")
    lines.append(
        f"Best of {args.runs} after a warm-up, connect included, fresh process per query "
        f"and checkout, alternating; {time.time() - started:.0f} s in all; load average "
        f"at the end {load[0]:.1f}."
    )
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
