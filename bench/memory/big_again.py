"""Re-run bench/run.py --only big's timed parts (3e bench_big_queries, 3f
bench_incremental_refresh) on the already generated replicated cache, same functions."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CHECKOUT", "."), "bench"))
from common import Section, dummy_credentials, secs

dummy_credentials()
import gen  # noqa: E402 (after the path is set)
import querybench  # noqa: E402

tdir = gen.template(10, 365, 45)
root = gen.replicated_cache(tdir, 50)
label = "500×365 (replicated cache)"
bq = Section("3e", "", ["query", "size", "cache", "target"])
t0 = time.perf_counter()
querybench.bench_big_queries(label, root, bq, budget_s=60)
print(bq.markdown(), f"\n3e took {time.perf_counter() - t0:.0f} s", flush=True)
t0 = time.perf_counter()
rounds = querybench.bench_incremental_refresh(root, 125)
for i, rf in enumerate(rounds, 1):
    print(
        f"| {i} | {rf['files']} | {secs(rf['write_s'])} | {secs(rf['refresh_s'])} "
        f"| undo {secs(rf['undo_s'])} | "
        + ", ".join(f"{k} +{v:,}" for k, v in rf["rows_added"].items())
        + " |",
        flush=True,
    )
print(f"3f took {time.perf_counter() - t0:.0f} s")
