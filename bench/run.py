"""cprec benchmarks: `python bench/run.py [--quick]`; prints the figures, writes RESULTS.

Everything is measured in this one run on this machine (ratios are side by side).
Generated data is cached under bench/out/ (gitignored); `--fresh` deletes it first.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH, OUT, Section, du, dummy_credentials, machine, secs  # noqa: E402

QUICK = {
    "collect": {"pipelines": 50, "days": 2, "rate": 6, "workers": [8]},
    "flatten": {"pipelines": 5, "days": 30, "rate": 45},
    "memory": {"pipelines": 2, "histories": [10, 30], "rate": 45, "workers": 8},
    "cron": {"pipelines": 10, "hours": 1, "rate": 25},
    "template": {"pipelines": 5, "days": 90, "rate": 45},
    "sizes": [(5, 30), (10, 45), (20, 45)],
    "views_timeout": 30,
    "peers": {"pipelines": 3, "days": 30, "rate": 45},
}
FULL = {
    "collect": {"pipelines": 500, "days": 2, "rate": 6, "workers": [8, 32]},
    "flatten": {"pipelines": 20, "days": 30, "rate": 45},
    "memory": {"pipelines": 4, "histories": [30, 120], "rate": 45, "workers": 8},
    "cron": {"pipelines": 20, "hours": 8, "rate": 25},
    "template": {"pipelines": 10, "days": 365, "rate": 45},
    "sizes": [(20, 90), (50, 90), (50, 365)],
    "views_timeout": 45,
    "peers": {"pipelines": 10, "days": 90, "rate": 45},
}
MINIMUM = (
    "Minimum = full pages (ListPipelines 1000/page, the other lists 100/page) of each "
    "list the data needs + one GetPipelineExecution per new or changed execution + one "
    "GetPipelineState per pipeline; GetPipeline and STS GetCallerIdentity are not "
    "counted in either."
)
CRON_QUERIES = ["stage-durations", "failure-rates", "current-state", "pipeline-summary"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes")
    ap.add_argument("--fresh", action="store_true", help="delete cached generated data first")
    ap.add_argument("--sizes", help="query sizes as PxD,PxD (e.g. 50x90,200x365,500x365)")
    ap.add_argument(
        "--only", help="comma-separated sections: collect,flatten,memory,cron,queries,peers"
    )
    ap.add_argument(
        "--results", type=Path, help="markdown output (default bench/RESULTS[-quick].md)"
    )
    args = ap.parse_args()
    cfg = QUICK if args.quick else FULL
    if args.sizes:
        cfg = dict(cfg, sizes=[tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")])
    only = set(args.only.split(",")) if args.only else None
    if args.fresh:
        shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    dummy_credentials()
    import collection
    import gen
    import peers
    import querybench

    started = time.perf_counter()
    sections: list[Section] = []
    timings: dict[str, float] = {}

    def want(name: str) -> bool:
        return only is None or name in only

    def section(title, header, note=""):
        s = Section(title, note, header)
        print(f"\n== {title}", flush=True)
        sections.append(s)
        return s

    if want("collect"):
        c = cfg["collect"]
        t0 = time.perf_counter()
        s = section(
            "1. Collection at 50 ms per call (simulator over HTTP)",
            [
                "run",
                "calls made",
                "API minimum",
                "made/min",
                "GetPipeline",
                "calls/pipeline",
                "wall",
                "calls×50ms÷workers",
                "wall/ideal",
                "rows",
                "made/min by operation",
            ],
            f"{c['pipelines']} pipelines, {c['days']} days of history at {c['rate']} "
            "executions/day each; second run 5 simulated minutes later. " + MINIMUM,
        )
        collection.bench_collection(c["pipelines"], c["days"], c["rate"], c["workers"], s)
        timings["collect"] = time.perf_counter() - t0

    if want("flatten"):
        c = cfg["flatten"]
        t0 = time.perf_counter()
        s = section(
            "2a. Flatten and write action executions (in-process, no HTTP)",
            ["step", "rows", "time", "rows/s", "output"],
            f"{c['pipelines']} pipelines × {c['days']} days at {c['rate']} executions/day.",
        )
        collection.bench_flatten_write(c["pipelines"], c["days"], c["rate"], s)
        timings["flatten"] = time.perf_counter() - t0

    if want("memory"):
        c = cfg["memory"]
        t0 = time.perf_counter()
        s = section(
            "2b. Peak memory of a backfill vs history length",
            ["backfill", "action executions", "rows written", "wall", "peak RSS (VmHWM)", "growth"],
            "The collector runs alone in a subprocess (the simulator in another, no added "
            "latency); peak RSS from /proc/self/status VmHWM. Growth = (peak − imports-only "
            "peak) relative to the shortest history.",
        )
        collection.bench_memory(c["pipelines"], c["histories"], c["rate"], c["workers"], s)
        timings["memory"] = time.perf_counter() - t0

    if want("cron"):
        c = cfg["cron"]
        t0 = time.perf_counter()
        s = section(
            "4. Cron every 5 minutes: files before/after `compact`",
            [
                "scenario",
                "files after backfill",
                "files after cron",
                "after compact",
                "bytes",
                "compacted",
                "compact time",
                "collect run",
                "cron total",
            ],
            "compact(root, min_age_days=1, today=cron day + 2): every partition of the cron day "
            "and the days before it is closed.",
        )
        q = section(
            "4b. Query latency before/after compaction (cron data above)",
            ["query", "connection", "before", "after", "speed-up"],
            "Best of 3 after a warm-up, fresh connection each time (connect included).",
        )
        collection.bench_cron(
            c["pipelines"],
            c["hours"],
            c["rate"],
            {"parquet views": querybench.parquet_views},
            s,
            q,
            CRON_QUERIES,
        )
        timings["cron"] = time.perf_counter() - t0

    if want("queries"):
        c = cfg["template"]
        t0 = time.perf_counter()
        tdir = gen.template(c["pipelines"], c["days"], c["rate"])
        timings["generate: template"] = time.perf_counter() - t0
        sizes, rows = {}, {}
        g = section(
            "3a. Generated query data",
            [
                "size",
                "action executions",
                "executions",
                "stage_states rows",
                "Parquet files",
                "bytes",
                "generated in",
                "cache build",
            ],
            f"Template: {c['pipelines']} simulated pipelines × {c['days']} days at {c['rate']} "
            f"executions/day (built in {secs(gen.meta(tdir)['seconds'])}), flattened with "
            "recorder.flatten, one zstd file per (table, pipeline, dt). Larger sizes: copies of "
            "the template pipelines renamed `<name>-rNN` whose files are hard links to the "
            "template's (see bench/gen.py). State snapshots: 6 a day per pipeline. "
            "Cache build = queries.cache.refresh over the whole tree.",
        )
        t0 = time.perf_counter()
        for p, d in cfg["sizes"]:
            root = gen.replicate(tdir, p, d)
            problems = gen.check_layout(root)
            if problems:
                print("LAYOUT PROBLEMS:", problems)
            m = gen.meta(root)
            label = f"{p}×{d}"
            sizes[label] = root
            rows[label] = m["rows"]["action_executions"]
            files, nbytes = du(root)
            shutil.rmtree(root / ".cache", ignore_errors=True)
            build_s, _ = querybench.build_cache(root)
            g.add(
                label,
                m["rows"]["action_executions"],
                m["rows"]["executions"],
                m["rows"]["stage_states"],
                files,
                f"{nbytes / 1e9:.2f} GB",
                secs(m["seconds"]),
                secs(build_s),
            )
        timings["generate: sizes + cache builds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        s = section(
            "3b. Named query latency",
            ["query", "size", *querybench.factories(), "target (cache)"],
            "cache: best of 3 after a warm-up, a fresh connection each time (connect included). "
            "parquet views (`queries.connect(root, cache=False)`): only the three target "
            f"queries, one cold run in a fresh process, capped at {cfg['views_timeout']} s.",
        )
        res = querybench.bench_queries(
            sizes, s, full_views_max_files=0, timeout=cfg["views_timeout"]
        )
        gr = section(
            "3c. Cost growth vs size (relative to the smallest size)",
            ["query", "connection", *list(sizes)[1:]],
        )
        querybench.growth(res, sizes, rows, gr)
        timings["queries"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        f = section(
            "6. Floor: stage-durations vs a bare DuckDB scan of the columns it needs",
            [
                "size",
                "bare read_parquet",
                "stage-durations (views)",
                "views/floor",
                "bare scan of cache table",
                "stage-durations (cache)",
                "cache/cache floor",
                "cache/parquet floor",
            ],
            "Bare = read_parquet of action_executions (execution_id, stage, start_time, "
            "last_update_time, status), same per-stage quantiles, no views, no dedup.",
        )
        querybench.bench_floor(sizes, res, f, cfg["views_timeout"])
        timings["floor"] = time.perf_counter() - t0

    if want("peers"):
        c = cfg["peers"]
        t0 = time.perf_counter()
        s = section(
            "5a. Peers: stage-durations on the same rows",
            ["rows", "method", "time", "vs ours", "check"],
            "Best of 3 after a warm-up. See bench/peers.py for what each does.",
        )
        st = section(
            "5b. Storage of the same action executions",
            ["rows", "raw JSON pages", "our Parquet", "SQLite", "JSON/Parquet", "SQLite/Parquet"],
        )
        peers.bench_peers(c["pipelines"], c["days"], c["rate"], s, st)
        timings["peers"] = time.perf_counter() - t0

    total = time.perf_counter() - started
    t = section("Run time", ["part", "time"])
    for k, v in timings.items():
        t.add(k, secs(v))
    t.add("total", secs(total))
    mode = "quick" if args.quick else "full"
    out = args.results or BENCH / ("RESULTS-quick.md" if args.quick else "RESULTS.md")
    m = machine()
    md = [
        f"# Benchmark results ({mode} mode)",
        "",
        f"`python bench/run.py{' --quick' if args.quick else ''}` on "
        + "; ".join(f"{k} {v}" for k, v in m.items())
        + ".",
        "",
        "Method, choices and caveats: bench/README.md.",
        "",
    ]
    md += [s.markdown() for s in sections]
    out.write_text("\n".join(md))
    print()
    for s in sections:
        print(s.text())
        print()
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
