"""Item 5: the same rows and the same question (stage-durations) three ways.

- ours: DuckDB over our Parquet layout, through the named query (views + dedup);
- SQLite: the flattened rows in one table keyed on action_execution_id (what a
  `*-to-sqlite` tool gives: upsert on the key, so no dedup at query time), an index on
  (pipeline, execution_id, stage); stage runs grouped in SQL, durations with
  julianday(); quantiles (linear interpolation, like quantile_cont) in Python;
- pandas over the raw ListActionExecutions JSON pages as the API returned them
  (json.load every page, DataFrame, groupby, quantile(interpolation="linear")).
All three answers are compared (stage runs per pipeline/stage and p50).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
from pathlib import Path

from common import OUT, Section, best_of, du, ratio, secs
from gen import NOW

COMMON = {
    "account_id": "123456789012",
    "region": "us-east-1",
    "run_id": "bench",
    "recorded_at": NOW,
}


def build(pipelines: int, days: int, rate: float) -> Path:
    """Raw JSON pages, our Parquet layout and a SQLite file for the same rows (cached)."""
    from recorder.flatten import flatten_action_execution
    from recorder.schemas import TABLES
    from recorder.simulator import Account
    from recorder.store import write_rows

    out = OUT / f"peers-p{pipelines}-d{days}-r{rate:g}"
    if (out / "DONE").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    (out / "json").mkdir(parents=True)
    acct = Account(pipelines=pipelines, days=days, seed=7, now=NOW, rate=rate)
    cols = TABLES["action_executions"].columns
    db = sqlite3.connect(out / "peers.sqlite")
    db.execute(
        "CREATE TABLE action_executions (pipeline TEXT, "
        + ", ".join(f"{c} {'INTEGER' if c == 'pipeline_version' else 'TEXT'}" for c in cols)
        + ", PRIMARY KEY (account_id, region, pipeline, action_execution_id))"
    )
    insert = (
        f"INSERT OR REPLACE INTO action_executions (pipeline, {', '.join(cols)}) "
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
    db.execute("CREATE INDEX ae_stage ON action_executions (pipeline, execution_id, stage)")
    db.commit()
    db.close()
    (out / "DONE").write_text("")
    return out


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (DuckDB quantile_cont, pandas 'linear')."""
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


SQLITE_SQL = """
SELECT pipeline, stage,
       (julianday(max(last_update_time)) - julianday(min(start_time))) * 86400.0 AS d
FROM action_executions
GROUP BY pipeline, execution_id, stage
HAVING sum(status = 'InProgress') = 0
"""


def sqlite_stage_durations(path: Path) -> dict:
    db = sqlite3.connect(path)
    groups: dict[tuple[str, str], list[float]] = {}
    for pipeline, stage, d in db.execute(SQLITE_SQL):
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


def pandas_stage_durations(json_dir: Path) -> dict:
    import pandas as pd

    frames = []
    for f in sorted(os.listdir(json_dir)):
        with open(json_dir / f) as fh:
            items = json.load(fh)["actionExecutionDetails"]
        df = pd.DataFrame(
            items,
            columns=["pipelineExecutionId", "stageName", "status", "startTime", "lastUpdateTime"],
        )
        df["pipeline"] = f.rsplit(".", 2)[0]
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
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


def ours_stage_durations(root: Path) -> dict:
    import queries

    con = queries.connect(root, cache=False)
    t = queries.run_query(con, "stage-durations", now=NOW).to_pylist()
    con.close()
    return {(r["pipeline"], r["stage"]): (r["executions"], r["p50_s"]) for r in t}


def bench_peers(pipelines: int, days: int, rate: float, sec: Section, store: Section) -> None:
    out = build(pipelines, days, rate)
    pq_root = out / "parquet"
    results = {
        "ours": ours_stage_durations(pq_root),
        "sqlite": sqlite_stage_durations(out / "peers.sqlite"),
        "pandas": pandas_stage_durations(out / "json"),
    }
    agree = all(
        set(r) == set(results["ours"])
        and all(
            r[k][0] == results["ours"][k][0] and abs(r[k][1] - results["ours"][k][1]) < 1e-3
            for k in r
        )
        for r in results.values()
    )
    n_rows = (
        sqlite3.connect(out / "peers.sqlite")
        .execute("SELECT count(*) FROM action_executions")
        .fetchone()[0]
    )
    t_ours, _ = best_of(lambda: ours_stage_durations(pq_root))
    t_sql, _ = best_of(lambda: sqlite_stage_durations(out / "peers.sqlite"))
    t_pd, _ = best_of(lambda: pandas_stage_durations(out / "json"))
    label = f"{pipelines}×{days} days, {n_rows:,} action executions"
    sec.add(
        label,
        "DuckDB over our Parquet (connect + named query)",
        secs(t_ours),
        "1.00×",
        "answers agree" if agree else "ANSWERS DIFFER",
    )
    sec.add(label, "SQLite table + Python quantiles", secs(t_sql), ratio(t_sql, t_ours), "")
    sec.add(label, "pandas over raw JSON pages", secs(t_pd), ratio(t_pd, t_ours), "")
    files, pq_bytes = du(pq_root)
    json_files = list((out / "json").iterdir())
    json_bytes = sum(f.stat().st_size for f in json_files)
    sq = (out / "peers.sqlite").stat().st_size
    store.add(
        label,
        f"{json_bytes / 1e6:.1f} MB ({len(json_files):,} pages)",
        f"{pq_bytes / 1e6:.1f} MB ({files:,} files)",
        f"{sq / 1e6:.1f} MB",
        ratio(json_bytes, pq_bytes),
        ratio(sq, pq_bytes),
    )
