"""cprec benchmarks: `python bench/run.py [--quick]`; prints figures, writes bench/out/.

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
    "memory": {"sizes": [(2, 5, 90), (2, 20, 90), (50, 5, 6)], "workers": 8},
    "cron": {"pipelines": 10, "hours": 1, "rate": 25},
    "template": {"pipelines": 5, "days": 90, "rate": 45},
    "sizes": [(5, 30), (10, 45), (20, 45)],
    "views_timeout": 30,
    "big_copies": 4,
    "cron_pipelines": 10,
    "peers": {"base": (3, 30), "rate": 45, "copies": [1, 2], "views_timeout": 30, "budget_s": 20},
    "storage": {"pipelines": 5, "days": 10, "rate": 45, "timed": 50},
}
FULL = {
    "collect": {"pipelines": 500, "days": 2, "rate": 6, "workers": [8, 32]},
    "flatten": {"pipelines": 20, "days": 30, "rate": 45},
    # (pipelines, days, executions/day): history length at one rate, then pipeline count
    "memory": {"sizes": [(4, 30, 90), (4, 120, 90), (4, 365, 90), (500, 30, 6)], "workers": 8},
    "cron": {"pipelines": 20, "hours": 8, "rate": 25},
    "template": {"pipelines": 10, "days": 365, "rate": 45},
    "sizes": [(20, 90), (50, 90), (50, 365)],
    "views_timeout": 30,
    "big_copies": 50,
    "cron_pipelines": 125,
    "peers": {"base": (10, 365), "rate": 45, "copies": [1, 5], "views_timeout": 60, "budget_s": 60},
    "storage": {"pipelines": 20, "days": 30, "rate": 45, "timed": 100},
}
MINIMUM = (
    "Minimum = full pages (ListPipelines 1000/page, the other lists 100/page) of each "
    "list the data needs + one GetPipelineExecution per new or changed execution + one "
    "GetPipelineState per pipeline; GetPipeline and STS GetCallerIdentity are not "
    "counted in either."
)
CRON_QUERIES = ["stage-durations", "failure-rates", "current-state", "pipeline-summary"]


def flush_rows() -> int:
    from recorder.collect import FLUSH_ROWS

    return FLUSH_ROWS


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, about 3 minutes")
    ap.add_argument("--fresh", action="store_true", help="delete cached generated data first")
    ap.add_argument("--sizes", help="query sizes as PxD,PxD (e.g. 50x90,200x365,500x365)")
    ap.add_argument(
        "--only",
        help="comma-separated sections: collect,flatten,memory,cron,queries,big,peers,storage",
    )
    ap.add_argument(
        "--baseline",
        type=Path,
        help="memory: also collect with the recorder package of this directory (e.g. a git "
        "worktree of the commit before a change), side by side",
    )
    ap.add_argument(
        "--results",
        type=Path,
        help="markdown output (default bench/out/RESULTS[-quick].md; the tracked "
        "bench/RESULTS.md is written only when named here)",
    )
    ap.add_argument(
        "--peers-engines",
        help="peers: only these engines beside cprec (cache), comma-separated names as "
        "section 5a prints them (e.g. 'SQLite (covering index),SQLite (table scan)')",
    )
    args = ap.parse_args()
    cfg = QUICK if args.quick else FULL
    if args.peers_engines:
        cfg = dict(cfg, peers=dict(cfg["peers"], engines=args.peers_engines.split(",")))
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
    import storage

    started = time.perf_counter()
    wall_start = time.time()
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
            "2b. Peak memory of a backfill vs history length and pipeline count",
            [
                "backfill",
                "recorder",
                "action executions",
                "rows written",
                "rows/pipeline",
                "wall",
                "peak RSS (VmHWM)",
                "above imports",
                "growth",
            ],
            "The collector runs alone in a subprocess (the simulator in another, no added "
            "latency: memory, not wall time, is measured); peak RSS from /proc/self/status "
            "VmHWM. Above imports = peak − the imports-only peak; growth = that relative to "
            "the first size. The collector keeps at most "
            f"{flush_rows():,} rows buffered per pipeline worker "
            "(recorder.collect.FLUSH_ROWS); rows/pipeline = rows written ÷ pipelines, all "
            "tables."
            + (f" baseline: the recorder package of {args.baseline}." if args.baseline else ""),
        )
        collection.bench_memory(c["sizes"], c["workers"], s, baseline=args.baseline)
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

    res: dict = {}
    sizes: dict = {}
    rows: dict = {}
    if want("queries") or want("big"):
        c = cfg["template"]
        t0 = time.perf_counter()
        tdir = gen.template(c["pipelines"], c["days"], c["rate"])
        timings["generate: template"] = time.perf_counter() - t0
    if want("queries"):
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
                "files/s",
            ],
            f"Template: {c['pipelines']} simulated pipelines × {c['days']} days at {c['rate']} "
            f"executions/day (built in {secs(gen.meta(tdir)['seconds'])}), flattened with "
            "recorder.flatten, one zstd file per (table, pipeline, dt). Larger sizes: copies of "
            "the template pipelines renamed `<name>-rNN` whose files are hard links to the "
            "template's (see bench/gen.py). State snapshots: 6 a day per pipeline. "
            "Cache build = recorder.cache.refresh over the whole tree into no cache (a first "
            "build; `python bench/cachebuild.py --before <checkout>` compares two checkouts).",
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
                f"{files / build_s:,.0f}",
            )
        timings["generate: sizes + cache builds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        s = section(
            "3b. Named query latency",
            ["query", "size", *querybench.factories(), "target (cache)"],
            "cache (`queries.connect(root, cache=True)`): best of 3 after a warm-up, a fresh "
            "connection each time (connect included). parquet views "
            "(`queries.connect(root, cache=False)`): only the three target "
            f"queries, one cold run in a fresh process, capped at {cfg['views_timeout']} s.",
        )
        res.update(
            querybench.bench_queries(sizes, s, full_views_max_files=0, timeout=cfg["views_timeout"])
        )
        timings["queries"] = time.perf_counter() - t0
    if want("big"):
        copies = cfg["big_copies"]
        t0 = time.perf_counter()
        _, tcache_s = gen.template_cache(tdir)
        root = gen.replicated_cache(tdir, copies)
        timings["generate: replicated cache"] = time.perf_counter() - t0
        m = gen.meta(root)
        label = f"{m['pipelines']}×{m['days']} (replicated cache)"
        big = section(
            f"3d. {m['pipelines']}×{m['days']}: a cache built by replication, not from files",
            ["table", "rows"],
            f"The template's cache (recorder.cache.refresh of the {c['pipelines']}×{c['days']} "
            "template tree"
            + (f", built in this run in {secs(tcache_s)}" if tcache_s else ", built earlier")
            + f") copied, then every pipeline-keyed `cache.<table>` and `cache.stage_runs` "
            f"replicated {copies}× inside DuckDB (copy k renames pipeline p to p-rNN, as the "
            f"hard-linked sizes do): copy {secs(m['copy_seconds'])}, replication "
            f"{secs(m['replicate_seconds'])} (generated "
            + ("in this run" if m.get("built_at", 0) >= wall_start else "earlier, reused")
            + f"), file {m['bytes'] / 1e9:.2f} GB. `cache.files` lists the "
            f"{m['rows']['files']:,} paths the same size built from files would hold (they do "
            "not exist; the Parquet tree is empty, the cache path never reads it). "
            "The Parquet-view path was not run at this size (there is no Parquet tree); at "
            "500×365, connecting to the views over the hard-linked tree (~1.19M files) did "
            "not finish in 8 minutes (earlier measurement, bench/README.md).",
        )
        for t in ("action_executions", "executions", "stage_runs", "stage_states", "files"):
            big.add(f"cache.{t}", m["rows"][t])
        sizes[label] = root
        rows[label] = m["rows"]["action_executions"]
        t0 = time.perf_counter()
        bq = section(
            f"3e. Named query latency at {label}",
            ["query", "size", "cache", "target"],
            "`queries.connect(root, cache=True)`: best of 3 after a warm-up, a fresh "
            "connection each time (connect included).",
        )
        res.update(querybench.bench_big_queries(label, root, bq, budget_s=60))
        timings["queries: replicated cache"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rounds = querybench.bench_incremental_refresh(root, cfg["cron_pipelines"])
        timings["incremental refresh"] = time.perf_counter() - t0
        rf = rounds[0]
        r = section(
            f"3f. Incremental cache refresh at {label}: one cron run's new files",
            ["round", "new files", "write_rows", "refresh(written=...)", "rows added"],
            f"{rf['pipelines']} pipelines × 4 files (one new execution: executions, "
            "execution_revisions, action_executions; one stage_states snapshot) written with "
            "recorder.store.write_rows into the root, then `recorder.cache.refresh(root, "
            "written=those files)` timed: what each cron run pays. Each round's rows are "
            "removed again afterwards so the next round (and the next bench run) starts "
            "from the same cache.",
        )
        for i, rf in enumerate(rounds, 1):
            r.add(
                i,
                rf["files"],
                secs(rf["write_s"]),
                secs(rf["refresh_s"]),
                ", ".join(f"{k} +{v:,}" for k, v in rf["rows_added"].items()),
            )
    if len(sizes) > 1:
        gr = section(
            "3c. Cost growth vs size (relative to the smallest size)",
            ["query", "connection", *list(sizes)[1:]],
        )
        querybench.growth(res, sizes, rows, gr)
    if sizes:
        t0 = time.perf_counter()
        f = section(
            "6. Floor: stage-durations vs a bare DuckDB scan of the columns it needs",
            [
                "size",
                "bare read_parquet",
                "stage-durations (views)",
                "views/floor",
                "bare aggregate over cache.action_executions",
                "stage-durations (cache)",
                "cache/cache floor",
                "cache/parquet floor",
            ],
            "Bare = the same per-stage quantiles (runs grouped by pipeline, execution, stage) "
            "from action_executions (execution_id, stage, start_time, last_update_time, "
            "status) with no views, no dedup and no stage_runs: over read_parquet, and over "
            "the cache's own table (same storage as the cache's stage-durations, which reads "
            "the materialised stage_runs). Target: ≤ 3× the floor.",
        )
        querybench.bench_floor(sizes, res, f, cfg["views_timeout"])
        timings["floor"] = time.perf_counter() - t0

    if want("peers"):
        c = cfg["peers"]
        t0 = time.perf_counter()
        p, d = c["base"]
        s = section(
            "5a. Peers: stage-durations and failure-rates on the same rows",
            ["size", "query", "engine", "time", "vs cprec (cache)", "answers"],
            f"Sizes: {p}×{d} generated from one simulated account at {c['rate']:g} "
            "executions/day; larger sizes are renamed copies of it (copy k's pipelines "
            "`<name>-rNN`; JSON pages and Parquet files hard links to the base's, the SQLite "
            "file holds every row). Time = from a fresh connection (cprec, SQLite) or from "
            "reading the JSON pages (pandas) to the answer; best of up to 3 after an untimed "
            f"pass that computes the compared answers (fewer runs past {c['budget_s']} s). "
            "cprec (cache): `queries.connect(root, cache=True)` + `queries.run_query`; "
            "cprec (Parquet views): `cache=False`, one run in a fresh process, capped at "
            f"{c['views_timeout']} s. SQLite: one table upserted on the key, a covering "
            "index per query (and the same SQL with `NOT INDEXED`: a table scan); pandas: "
            "only the needed keys of each page kept. Answers: "
            "every engine's rows vs cprec (cache): keys and counts exact, stage-durations' "
            "p50/p90/p95/max/mean within 1e-6 s, failure-rates' failure_rate exact. "
            "See bench/peers.py.",
        )
        st = section(
            "5b. Storage of the same action executions",
            [
                "size",
                "raw JSON pages",
                "our Parquet",
                "cprec cache",
                "SQLite (with indexes)",
                "JSON/Parquet",
                "SQLite/Parquet",
                "pandas peak RSS (stage-durations / failure-rates)",
            ],
            "pandas peak RSS: VmHWM of a fresh Python process answering the query "
            "(imports included).",
        )
        peers.bench_peers(c, s, st)
        timings["peers"] = time.perf_counter() - t0

    if want("storage"):
        c = cfg["storage"]
        t0 = time.perf_counter()
        s = section(
            "7a. Storage per writer option: action_executions vs the raw JSON pages",
            [
                "lever",
                "variant",
                "fresh bytes",
                "JSON/Parquet",
                "vs today",
                "compacted bytes",
                "JSON/Parquet",
                "vs today",
                "encode time/file",
                "vs today",
            ],
            f"{c['pipelines']} pipelines × {c['days']} days at {c['rate']} executions/day; "
            "raw JSON = the ListActionExecutions pages as the simulator sends them (as in 5b); "
            "one file per (pipeline, action start day). Fresh = a backfill's files (API order "
            "unless the variant sorts); compacted = `cprec compact`'s output (today: "
            "natural-key order). Bytes over every partition; encode time: sort + options + "
            f"write into memory, per file over {c['timed']} of the partitions, best of 3. "
            "Each lever alone against today's writer, then combinations; (chosen) = "
            "in store.py now. See bench/storage.py.",
        )
        r = section(
            "7b. The real writers on disk: store.write_rows and compact, today vs now",
            [
                "writer",
                "files",
                "fresh bytes",
                "write_rows per file",
                "vs today",
                "compact",
                "compacted bytes",
                "compact per partition",
                "vs today",
            ],
            f"The same {c['timed']} partitions. write_rows (to_arrow, sort, encode, fsync, "
            "rename): each partition as one file. compact: the same rows written as two files "
            "per partition, then `compact(root, grace=0)`. Best of 5, the writers taking turns. "
            "today = store.parquet_options/sort_rows patched back to default zstd, API order, "
            "natural-key order in compaction.",
        )
        cr = section(
            "7c. Uncompacted cron files: the same rows in 5-minute files",
            ["files", "today (JSON/Parquet)", "now (JSON/Parquet)", "now vs today"],
            f"The {c['timed']} partitions of 7b, each split by the 5-minute bucket of "
            "last_update_time (a cron run every 5 minutes writes the actions that ended since "
            "the last one): what a day holds until `compact`. JSON side: the dataset's raw "
            "bytes per row times these rows (re-recorded in-progress rows not counted).",
        )
        storage.bench_storage(c["pipelines"], c["days"], c["rate"], s, r, c["timed"], cr)
        timings["storage"] = time.perf_counter() - t0

    total = time.perf_counter() - started
    t = section("Run time", ["part", "time"])
    for k, v in timings.items():
        t.add(k, secs(v))
    t.add("total", secs(total))
    mode = "quick" if args.quick else "full"
    out = args.results or BENCH / "out" / ("RESULTS-quick.md" if args.quick else "RESULTS.md")
    out.parent.mkdir(parents=True, exist_ok=True)
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
