"""Item 5: the same rows and the same questions (stage-durations, failure-rates) four ways.

- cprec (cache): `queries.connect(root, cache=True)` + `queries.run_query`: the DuckDB
  cache `<root>/.cache/cprec.duckdb` built by `recorder.cache.refresh(root)`;
- cprec (Parquet views): `queries.connect(root, cache=False)` + the named query, in a
  fresh child process, capped (it binds every file's schema: O(files));
- SQLite: the flattened rows in one table keyed on (account, region, pipeline,
  action_execution_id) — what a `*-to-sqlite` tool gives: upsert on the key, so no dedup
  at query time — with the covering index each query wants, created after the load;
  stage runs grouped in SQL, durations from julianday() rounded to the millisecond
  (SQLite's date functions keep ms; the float error of a julianday difference is ~40 µs),
  quantiles (linear interpolation, like quantile_cont) in Python; failure rates wholly in SQL;
- pandas over the raw ListActionExecutions JSON pages as the API returned them: json.load
  every page, keep only the keys the question needs (a careful user's memory bound), one
  DataFrame, groupby, quantile(interpolation="linear").

Every timing starts from nothing open: a fresh connection (cprec, SQLite) or reading the
JSON pages again (pandas); the Python process and the OS page cache are warm (a first,
untimed pass computes the answers that are compared). The answers of all engines are
compared: stage-durations per (pipeline, stage): executions exactly, p50/p90/p95/max/mean
within 1e-6 s; failure-rates per (pipeline, stage, action): attempts, failed and
failure_rate exactly.

Sizes: the generated base (T pipelines x D days from one simulated account) and copies of
it: copy k renames every pipeline `<name>-rNN` (as bench/gen.py does). Raw JSON pages and
Parquet files of a copy are hard links to the base's (the pipeline is in the page's file
name, never inside ListActionExecutions' JSON); the SQLite file of a copy size holds every
row (INSERT ... SELECT from the base with the pipeline renamed, indexes built after).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from common import OUT, Section, du, ratio, secs
from gen import NOW

COMMON = {
    "account_id": "123456789012",
    "region": "us-east-1",
    "run_id": "bench",
    "recorded_at": NOW,
}
QUERIES = ("stage-durations", "failure-rates")
TERMINAL = ("Succeeded", "Failed", "Abandoned")  # recorder/sql/_macros.sql action_terminal
INDEXES = (  # created after the rows are loaded; each covers its query's columns
    "CREATE INDEX ae_stage_runs ON action_executions "
    "(pipeline, execution_id, stage, status, start_time, last_update_time)",
    "CREATE INDEX ae_actions ON action_executions (pipeline, stage, action, status)",
)
FLOAT_TOL = 1e-6  # seconds


def _create_table(db: sqlite3.Connection) -> tuple[list[str], str]:
    from recorder.schemas import TABLES

    cols = TABLES["action_executions"].columns
    db.execute(
        "CREATE TABLE action_executions (pipeline TEXT, "
        + ", ".join(f"{c} {'INTEGER' if c == 'pipeline_version' else 'TEXT'}" for c in cols)
        + ", PRIMARY KEY (account_id, region, pipeline, action_execution_id))"
    )
    return cols, ", ".join(cols)


def build(pipelines: int, days: int, rate: float) -> Path:
    """Raw JSON pages, our Parquet layout and a SQLite file for the same rows (cached)."""
    from recorder.flatten import flatten_action_execution
    from recorder.simulator import Account
    from recorder.store import write_rows

    out = OUT / f"peers-p{pipelines}-d{days}-r{rate:g}"
    if (out / "DONE").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    (out / "json").mkdir(parents=True)
    t0 = time.perf_counter()
    acct = Account(pipelines=pipelines, days=days, seed=7, now=NOW, rate=rate)
    db = sqlite3.connect(out / "peers.sqlite")
    cols, col_list = _create_table(db)
    insert = (
        f"INSERT OR REPLACE INTO action_executions (pipeline, {col_list}) "
        f"VALUES ({', '.join('?' * (len(cols) + 1))})"
    )
    for name in acct.pipeline_names():
        params, n = {"pipelineName": name, "maxResults": 100}, 0
        rows = []
        while True:
            page = acct.call("ListActionExecutions", params)
            raw = json.dumps(page, separators=(",", ":"))
            (out / "json" / f"{name}.{n:05d}.json").write_text(raw)
            n += 1
            rows += [flatten_action_execution(d) for d in page["actionExecutionDetails"]]
            if "nextToken" not in page:
                break
            params["nextToken"] = page["nextToken"]
        full = [{**COMMON, **r} for r in rows]
        write_rows(
            out / "parquet",
            "action_executions",
            [{**r, "dt": r["start_time"].date()} for r in full],
            pipeline=name,
            run_id="bench",
        )
        db.executemany(
            insert,
            [
                (
                    name,
                    *[
                        v.isoformat() if hasattr(v, "isoformat") else v
                        for v in (r[c] for c in cols)
                    ],
                )
                for r in full
            ],
        )
        db.commit()
    for ddl in INDEXES:
        db.execute(ddl)
    db.commit()
    db.close()
    _finish(out, {"generated_s": time.perf_counter() - t0, "replicated": 1})
    return out


def replicate(base: Path, copies: int) -> Path:
    """The base's rows `copies` times, copy k's pipelines renamed `<name>-rNN` (cached).

    JSON pages and Parquet files are hard links to the base's; the SQLite file is real.
    """
    out = OUT / f"{base.name}-x{copies}-renamed"
    if (out / "DONE").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t0 = time.perf_counter()

    def renamed(name: str, k: int) -> str:
        return name if k == 0 else f"{name}-r{k:02d}"

    (out / "json").mkdir()
    for f in sorted(os.listdir(base / "json")):
        name, n, ext = f.rsplit(".", 2)
        for k in range(copies):
            os.link(base / "json" / f, out / "json" / f"{renamed(name, k)}.{n}.{ext}")
    src = base / "parquet" / "action_executions"
    for pdir in sorted(src.iterdir()):
        name = pdir.name.split("=", 1)[1]
        for k in range(copies):
            for dt_dir in pdir.iterdir():
                dest = out / "parquet" / "action_executions" / f"pipeline={renamed(name, k)}"
                (dest / dt_dir.name).mkdir(parents=True)
                for f in dt_dir.iterdir():
                    os.link(f, dest / dt_dir.name / f.name)
    db = sqlite3.connect(out / "peers.sqlite")
    _, col_list = _create_table(db)
    db.execute("ATTACH ? AS base", (str(base / "peers.sqlite"),))
    for k in range(copies):
        db.execute(
            f"INSERT OR REPLACE INTO action_executions (pipeline, {col_list}) "
            f"SELECT pipeline || ?, {col_list} FROM base.action_executions ORDER BY rowid",
            ("" if k == 0 else f"-r{k:02d}",),
        )
        db.commit()
    db.execute("DETACH base")
    for ddl in INDEXES:
        db.execute(ddl)
    db.commit()
    db.close()
    _finish(out, {"generated_s": time.perf_counter() - t0, "replicated": copies})
    return out


def _finish(out: Path, meta: dict) -> None:
    from recorder import cache

    t0 = time.perf_counter()
    cache.refresh(out / "parquet")
    meta["cache_build_s"] = time.perf_counter() - t0
    meta["rows"] = (
        sqlite3.connect(out / "peers.sqlite")
        .execute("SELECT count(*) FROM action_executions")
        .fetchone()[0]
    )
    (out / "DONE").write_text(json.dumps(meta))


# --- the engines ----------------------------------------------------------------------


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (DuckDB quantile_cont, pandas 'linear')."""
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


SQLITE_STAGE_RUNS = """
SELECT pipeline, stage,
       round((julianday(max(last_update_time)) - julianday(min(start_time))) * 86400000.0)
           / 1000.0 AS d
FROM action_executions {hint}
GROUP BY pipeline, execution_id, stage
HAVING sum(status = 'InProgress') = 0
"""
SQLITE_FAILURE_RATES = f"""
SELECT pipeline, stage, action, count(*) AS attempts, sum(status = 'Failed') AS failed,
       1.0 * sum(status = 'Failed') / count(*) AS failure_rate
FROM action_executions {{hint}}
WHERE status IN {TERMINAL!r}
GROUP BY pipeline, stage, action
"""


def sqlite_stage_durations(path: Path, hint: str = "") -> dict:
    """`hint`: "NOT INDEXED" makes SQLite scan the table (no index of INDEXES)."""
    db = sqlite3.connect(path)
    groups: dict[tuple[str, str], list[float]] = {}
    for pipeline, stage, d in db.execute(SQLITE_STAGE_RUNS.format(hint=hint)):
        groups.setdefault((pipeline, stage), []).append(d)
    db.close()
    out = {}
    for k, v in groups.items():
        v.sort()
        out[k] = (
            len(v),
            quantile(v, 0.5),
            quantile(v, 0.9),
            quantile(v, 0.95),
            v[-1],
            sum(v) / len(v),
        )
    return out


def sqlite_failure_rates(path: Path, hint: str = "") -> dict:
    db = sqlite3.connect(path)
    rows = db.execute(SQLITE_FAILURE_RATES.format(hint=hint))
    out = {(p, s, a): (n, f, r) for p, s, a, n, f, r in rows}
    db.close()
    return out


def _pandas_load(json_dir: Path, keys: list[str]):
    """One DataFrame of `keys` (+ pipeline, from the page's file name) over every page.

    Only the needed keys of each action execution are kept (lists per key, one
    DataFrame at the end), so memory holds those columns, not the parsed pages.
    """
    import pandas as pd

    cols: dict[str, list] = {k: [] for k in ["pipeline", *keys]}
    for f in sorted(os.listdir(json_dir)):
        with open(json_dir / f) as fh:
            items = json.load(fh)["actionExecutionDetails"]
        cols["pipeline"].extend([f.rsplit(".", 2)[0]] * len(items))
        for k in keys:
            cols[k].extend([d.get(k) for d in items])
    return pd.DataFrame(cols)


def pandas_stage_durations(json_dir: Path) -> dict:
    import pandas as pd

    df = _pandas_load(
        json_dir, ["pipelineExecutionId", "stageName", "status", "startTime", "lastUpdateTime"]
    )
    df["ip"] = df["status"] == "InProgress"
    runs = df.groupby(["pipeline", "pipelineExecutionId", "stageName"]).agg(
        s=("startTime", "min"), e=("lastUpdateTime", "max"), ip=("ip", "sum")
    )
    runs = runs[runs["ip"] == 0]
    runs["d"] = runs["e"] - runs["s"]
    g = runs.groupby(level=["pipeline", "stageName"])["d"]
    res = pd.DataFrame(
        {
            "n": g.count(),
            "p50": g.quantile(0.5),
            "p90": g.quantile(0.9),
            "p95": g.quantile(0.95),
            "max": g.max(),
            "mean": g.mean(),
        }
    )
    return {k: tuple(v) for k, v in zip(res.index, res.itertuples(index=False), strict=True)}


def pandas_failure_rates(json_dir: Path) -> dict:
    df = _pandas_load(json_dir, ["stageName", "actionName", "status"])
    df = df[df["status"].isin(TERMINAL)]
    df = df.assign(failed=df["status"] == "Failed")
    g = df.groupby(["pipeline", "stageName", "actionName"])["failed"].agg(["size", "sum"])
    return {
        k: (int(n), int(f), int(f) / int(n))
        for k, n, f in zip(g.index, g["size"], g["sum"], strict=True)
    }


def _cprec(root: Path, name: str, cache: bool) -> dict:
    import queries

    con = queries.connect(root, cache=cache)
    try:
        t = queries.run_query(con, name, now=NOW).to_pylist()
    finally:
        con.close()
    if name == "stage-durations":
        return {
            (r["pipeline"], r["stage"]): (
                r["executions"],
                r["p50_s"],
                r["p90_s"],
                r["p95_s"],
                r["max_s"],
                r["mean_s"],
            )
            for r in t
        }
    return {
        (r["pipeline"], r["stage"], r["action"]): (r["attempts"], r["failed"], r["failure_rate"])
        for r in t
    }


def cprec_connect(root: Path) -> None:
    import queries

    queries.connect(root, cache=True).close()


def engines(out: Path) -> dict[str, dict[str, Callable[[], dict]]]:
    pq, sq, js = out / "parquet", out / "peers.sqlite", out / "json"
    return {
        "stage-durations": {
            "cprec (cache)": lambda: _cprec(pq, "stage-durations", True),
            "SQLite (covering index)": lambda: sqlite_stage_durations(sq),
            "SQLite (table scan)": lambda: sqlite_stage_durations(sq, "NOT INDEXED"),
            "pandas (raw JSON)": lambda: pandas_stage_durations(js),
        },
        "failure-rates": {
            "cprec (cache)": lambda: _cprec(pq, "failure-rates", True),
            "SQLite (covering index)": lambda: sqlite_failure_rates(sq),
            "SQLite (table scan)": lambda: sqlite_failure_rates(sq, "NOT INDEXED"),
            "pandas (raw JSON)": lambda: pandas_failure_rates(js),
        },
    }


def compare(a: dict, b: dict) -> tuple[bool, float]:
    """(same keys and values, max abs difference of the float figures)."""
    if set(a) != set(b):
        return False, math.inf
    worst = 0.0
    for k, va in a.items():
        vb = b[k]
        if va[0] != vb[0]:
            return False, math.inf
        for x, y in zip(va[1:], vb[1:], strict=True):
            if isinstance(x, int) and isinstance(y, int):
                if x != y:
                    return False, math.inf
            else:
                worst = max(worst, abs(float(x) - float(y)))
    return worst <= FLOAT_TOL, worst


def timed(fn: Callable[[], object], runs: int = 3, budget_s: float = 30.0) -> tuple[float, int]:
    """Best of up to `runs` timed calls (the untimed answer pass was the warm-up); after
    the first, another run is made only while the total stays within `budget_s`."""
    best, n, spent = math.inf, 0, 0.0
    while n < runs and (n == 0 or spent + best <= budget_s):
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        best, n, spent = min(best, t), n + 1, spent + t
    return best, n


def pandas_peak_rss(json_dir: Path, query: str) -> int | None:
    """Peak RSS (VmHWM, bytes) of a fresh Python process answering `query` with pandas."""
    import subprocess
    import sys

    fn = "pandas_" + query.replace("-", "_")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import peers; from pathlib import Path; "
        f"peers.{fn}(Path(sys.argv[2])); "
        "print(next(ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(json_dir)],
        capture_output=True,
        text=True,
    )
    return int(r.stdout.split()[-1]) * 1024 if r.returncode == 0 else None


def _views_child(conn, root, name, runs):
    try:
        best = math.inf
        for _ in range(runs):
            t0 = time.perf_counter()
            ans = _cprec(root, name, cache=False)
            best = min(best, time.perf_counter() - t0)
        conn.send((best, ans))
    except Exception as e:  # noqa: BLE001 - reported in the table
        conn.send(("error", f"{type(e).__name__}: {e}"[:120]))


def _in_child(target, args: tuple, timeout: float):
    """target(conn, *args) in a forked child: what it sent, or None after `timeout` s."""
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    p = ctx.Process(target=target, args=(b, *args))
    p.start()
    if a.poll(timeout):
        out = a.recv()
        p.join()
        return out
    p.kill()
    p.join()
    return None


# --- the section ----------------------------------------------------------------------


def bench_peers(cfg: dict, sec: Section, store: Section) -> dict:
    """Every size of cfg: {"base": (pipelines, days), "rate", "copies": [1, k, ...],
    "views_timeout", "budget_s"}, and optionally "engines" (the names of engines() and
    "cprec (Parquet views)" to run; "cprec (cache)" always runs: it is the reference).
    Returns {(size, query, engine): seconds or None}."""
    from recorder import cache

    wanted = cfg.get("engines")
    run_views = not wanted or "cprec (Parquet views)" in wanted
    p, d = cfg["base"]
    base = build(p, d, cfg["rate"])
    results: dict = {}
    for copies in cfg["copies"]:
        out = base if copies == 1 else replicate(base, copies)
        meta = json.loads((out / "DONE").read_text())
        label = f"{p * copies}×{d} ({meta['rows']:,} action executions" + (
            f"; {p}×{d} generated, ×{copies} renamed copies)" if copies > 1 else ")"
        )
        print(f"  -- {label}", flush=True)
        pq_root = out / "parquet"
        # The cache was built with the size: brought up to date by this checkout (which
        # derives its rows again when its SQL differs from the builder's: readers refuse
        # rows another version derived).
        cache.refresh(pq_root)
        for qname, engs in engines(out).items():
            if wanted:
                engs = {e: fn for e, fn in engs.items() if e == "cprec (cache)" or e in wanted}
            answers = {e: fn() for e, fn in engs.items()}  # also the warm-up
            ref = answers["cprec (cache)"]
            t_ref = None
            for e, fn in engs.items():
                t, n = timed(fn, budget_s=cfg["budget_s"])
                results[(label, qname, e)] = t
                t_ref = t if t_ref is None else t_ref
                same, worst = compare(answers[e], ref)
                check = (
                    f"reference: {len(ref):,} rows"
                    if e == "cprec (cache)"
                    else (f"{len(answers[e]):,} rows equal" if same else "ANSWERS DIFFER")
                    + (f" (max float diff {worst:.1e} s)" if qname == "stage-durations" else "")
                )
                sec.add(label, qname, e, f"{secs(t)} (best of {n})", ratio(t, t_ref), check)
                if e == "cprec (cache)":
                    tc, nc = timed(lambda r=pq_root: cprec_connect(r), budget_s=cfg["budget_s"])
                    sec.add(
                        label,
                        qname,
                        "  of which connect (cache)",
                        f"{secs(tc)} (best of {nc})",
                        ratio(tc, t_ref),
                        "queries.connect(root, cache=True) + close",
                    )
            if not run_views:
                continue
            r = _in_child(_views_child, (pq_root, qname, 1), cfg["views_timeout"])
            if r is None:
                cell, rat, check = f"> {cfg['views_timeout']:.0f} s (cap)", "-", "did not finish"
                results[(label, qname, "cprec (Parquet views)")] = None
            elif r[0] == "error":
                cell, rat, check = "error", "-", r[1]
            else:
                same, worst = compare(r[1], ref)
                cell, rat = f"{secs(r[0])} (1 run, fresh process)", ratio(r[0], t_ref)
                check = f"{len(r[1]):,} rows equal" if same else "ANSWERS DIFFER"
                results[(label, qname, "cprec (Parquet views)")] = r[0]
            sec.add(label, qname, "cprec (Parquet views)", cell, rat, check)
        if wanted and "pandas (raw JSON)" not in wanted:
            peaks = [None for _ in QUERIES]
        else:
            peaks = [pandas_peak_rss(out / "json", q) for q in QUERIES]
        files, pq_bytes = du(pq_root)
        json_files = list((out / "json").iterdir())
        json_bytes = sum(f.stat().st_size for f in json_files)
        inodes = {f.stat().st_ino: f.stat().st_size for f in json_files}
        json_disk = sum(inodes.values())
        sq = (out / "peers.sqlite").stat().st_size
        cache_bytes = (pq_root / ".cache" / "cprec.duckdb").stat().st_size
        store.add(
            label,
            f"{json_bytes / 1e9:.2f} GB ({len(json_files):,} pages"
            + (f"; {json_disk / 1e9:.2f} GB on disk, hard links)" if copies > 1 else ")"),
            f"{pq_bytes / 1e6:.1f} MB ({files:,} files)",
            f"{cache_bytes / 1e6:.1f} MB (built in {secs(meta['cache_build_s'])})",
            f"{sq / 1e9:.2f} GB",
            ratio(json_bytes, pq_bytes),
            ratio(sq, pq_bytes),
            " / ".join("-" if b is None else f"{b / 1e9:.2f} GB" for b in peaks),
        )
    return results
