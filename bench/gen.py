"""Query-size data: a simulator template, replicated with DuckDB to many pipelines.

The pure-Python simulator makes ~25k action executions a second, too slow for
500 pipelines x 365 days (~36M action executions). So:

1. template: T pipelines x D days at `rate` executions a day straight from the
   simulated account (in-process, no HTTP: the same response shapes), flattened with
   recorder.flatten into the canonical recorder.schemas tables, written in the real
   layout, one file per (table, pipeline, dt) partition, sorted and encoded as
   recorder.store writes them (sort_rows, parquet_options).
   State snapshots: the real GetPipelineState at `now`, plus copies of it at
   `snapshots_per_day` times a day over the history (a snapshot is only written
   when the state changes; the real density depends on how busy a pipeline is).
2. replicate: copy k of the template renames every pipeline `<name>-rNN`; partitions
   older than the size's day count are left out. A partition of copy k is a hard link
   to the template's file: writing a Parquet file costs ~3 ms here whatever its size
   (27 column chunks + footer), so 500 x 365 day partitions x 10 tables (~1.5M files)
   would take over an hour to write, and links take a minute or two. Ids are not
   suffixed: the pipeline lives in the path only, and every natural key, view and
   join includes the pipeline, so the copies are distinct rows to every query.
   DuckDB still opens and decodes every file; only the OS page cache is shared.

Everything is cached under bench/out/ keyed by its parameters.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import OUT

NOW = datetime(2026, 5, 1, tzinfo=UTC)
ACCOUNT, REGION = "123456789012", "us-east-1"
RUN_ID = "bench-template"
ID_COLUMNS = {
    "executions": ["execution_id", "rollback_target_execution_id"],
    "execution_revisions": ["execution_id"],
    "execution_variables": ["execution_id"],
    "action_executions": ["execution_id", "action_execution_id"],
    "rule_executions": ["execution_id", "rule_execution_id"],
    "stage_states": ["inbound_execution_id", "latest_execution_id"],
    "action_states": ["action_execution_id"],
    "condition_states": ["rule_execution_id"],
}
TIME_TABLES = {  # tables whose dt follows the history (filtered by the size's days)
    "executions",
    "execution_revisions",
    "execution_variables",
    "action_executions",
    "rule_executions",
    "stage_states",
    "action_states",
    "condition_states",
}


def _pages(acct, op: str, key: str, params: dict) -> list[dict]:
    out, params = [], dict(params, maxResults=100)
    while True:
        page = acct.call(op, params)
        out += page.get(key) or []
        if "nextToken" not in page:
            return out
        params["nextToken"] = page["nextToken"]


def _template_chunk(args) -> dict[str, int]:
    """Flatten pipelines [lo, hi) of the account into <dir>/data/<table>/pipeline=/dt=/."""
    out_dir, pipelines, days, rate, seed, snaps, lo, hi = args
    import pyarrow.parquet as pq

    from recorder.flatten import (
        flatten_action_execution,
        flatten_execution,
        flatten_pipeline,
        flatten_pipeline_state,
        flatten_rule_execution,
        ts,
    )
    from recorder.schemas import TABLES, to_arrow
    from recorder.simulator import Account
    from recorder.store import parquet_options, sort_rows

    acct = Account(pipelines=pipelines, days=days, seed=seed, now=NOW, rate=rate)
    common = {"account_id": ACCOUNT, "region": REGION, "run_id": RUN_ID, "recorded_at": NOW}
    counts: dict[str, dict[str, dict[str, int]]] = {}

    def emit(table: str, rows: list[dict], name: str, dts: list) -> None:
        by_dt: dict = {}
        for r, dt in zip(rows, dts, strict=True):
            by_dt.setdefault(dt, []).append({**common, **r})
        for dt, part in by_dt.items():
            d = Path(out_dir, "data", table, f"pipeline={name}", f"dt={dt.isoformat()}")
            d.mkdir(parents=True, exist_ok=True)
            n = len(list(d.iterdir()))
            data = sort_rows(table, to_arrow(table, part))
            pq.write_table(data, d / f"part-{RUN_ID}-{n}.parquet", **parquet_options(data))
            c = counts.setdefault(table, {}).setdefault(name, {})
            c[dt.isoformat()] = c.get(dt.isoformat(), 0) + len(part)

    step = timedelta(days=1) / snaps if snaps else None
    for name in acct.pipeline_names()[lo:hi]:
        summaries = _pages(
            acct, "ListPipelineExecutions", "pipelineExecutionSummaries", {"pipelineName": name}
        )
        details = {d["pipelineExecutionId"]: d for d in acct.all_executions(name)}
        start = {}
        tables: dict[str, list[dict]] = {}
        for s in summaries:
            eid = s["pipelineExecutionId"]
            start[eid] = ts(s["startTime"]).date()
            for table, rows in flatten_execution({"pipelineExecution": details[eid]}, s).items():
                tables.setdefault(table, []).extend(rows)
        for table, rows in tables.items():
            emit(table, rows, name, [start[r["execution_id"]] for r in rows])
        for table, lister, flatten in (
            ("action_executions", acct.all_action_executions, flatten_action_execution),
            ("rule_executions", acct.all_rule_executions, flatten_rule_execution),
        ):
            rows = [flatten(d) for d in lister(name) if d["pipelineExecutionId"] in start]
            emit(table, rows, name, [start[r["execution_id"]] for r in rows])
        definition = acct.call("GetPipeline", {"name": name})
        row, actions = flatten_pipeline(definition)
        emit("pipelines", [row], name, [NOW.date()])
        emit("pipeline_actions", actions, name, [NOW.date()] * len(actions))
        state = acct.call("GetPipelineState", {"name": name})
        times = [NOW]
        if step:
            t = NOW - timedelta(days=days)
            while t < NOW:
                times.append(t)
                t += step
        snap: dict[str, tuple[list, list]] = {}
        for at in times:
            for table, rows in flatten_pipeline_state(state, at).items():
                snap.setdefault(table, ([], []))[0].extend(rows)
                snap[table][1].extend([at.date()] * len(rows))
        for table, (rows, dts) in snap.items():
            emit(table, rows, name, dts)
    assert set(counts) <= set(TABLES)
    return counts


def template(pipelines: int, days: int, rate: float, seed: int = 7, snaps: int = 6) -> Path:
    """The template directory (built once per parameter set, cached)."""
    # enc2: files encoded and sorted as recorder.store writes them (parquet_options)
    key = f"template-p{pipelines}-d{days}-r{rate:g}-s{seed}-snap{snaps}-enc2"
    out = OUT / key
    done = out / "DONE.json"
    if done.exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    chunks = max(1, min(pipelines, 8))
    bounds = [round(i * pipelines / chunks) for i in range(chunks + 1)]
    args = [
        (out, pipelines, days, rate, seed, snaps, bounds[i], bounds[i + 1])
        for i in range(chunks)
        if bounds[i] < bounds[i + 1]
    ]
    counts: dict[str, dict] = {}
    with ProcessPoolExecutor(max_workers=2) as pool:
        for c in pool.map(_template_chunk, args):
            for table, per in c.items():
                counts.setdefault(table, {}).update(per)
    from recorder.simulator import Account

    names = Account(pipelines=pipelines, days=0, seed=seed, now=NOW).pipeline_names()
    meta = {
        "seconds": time.perf_counter() - t0,
        "pipelines": names,
        "rows": {t: sum(sum(d.values()) for d in per.values()) for t, per in counts.items()},
        "counts": counts,
    }
    done.write_text(json.dumps(meta, indent=1))
    return out


def replicate(tdir: Path, pipelines: int, days: int) -> Path:
    """<OUT>/sizes/<P>x<D>-.../data: the template scaled to `pipelines` x last `days` days.

    Copy k of template pipeline p is `p` (k = 0) or `p-rNN`; its files are hard links to
    the template's files (the pipeline name lives in the path only, and every natural
    key and join includes the pipeline, so identical ids in different pipelines are
    distinct rows to every view). Cached.
    """
    meta_t = json.loads((tdir / "DONE.json").read_text())
    names = meta_t["pipelines"]
    out = OUT / "sizes" / f"{pipelines}x{days}-from-{tdir.name}"
    root = out / "data"
    done = out / "DONE.json"
    if done.exists():
        return root
    shutil.rmtree(out, ignore_errors=True)
    root.mkdir(parents=True)
    since = (NOW.date() - timedelta(days=days)).isoformat()
    t0 = time.perf_counter()
    chosen = []
    for k in range(math.ceil(pipelines / len(names))):
        for n in names:
            chosen.append((n, n if k == 0 else f"{n}-r{k:02d}"))
    chosen = chosen[:pipelines]
    files = 0
    for table in meta_t["rows"]:
        for src_name, new_name in chosen:
            src = tdir / "data" / table / f"pipeline={src_name}"
            if not src.is_dir():
                continue
            for dt_dir in sorted(src.iterdir()):
                if table in TIME_TABLES and dt_dir.name[3:] < since:
                    continue
                dest = root / table / f"pipeline={new_name}" / dt_dir.name
                dest.mkdir(parents=True)
                for f in dt_dir.iterdir():
                    os.link(f, dest / f.name)
                    files += 1
    rows = {t: 0 for t in meta_t["counts"]}
    for table, per in meta_t["counts"].items():
        for src_name, _ in chosen:
            rows[table] += sum(
                n
                for dt, n in per.get(src_name, {}).items()
                if table not in TIME_TABLES or dt >= since
            )
    meta = {
        "seconds": time.perf_counter() - t0,
        "pipelines": pipelines,
        "days": days,
        "files": files,
        "rows": rows,
    }
    done.write_text(json.dumps(meta, indent=1))
    return root


def meta(path: Path) -> dict:
    d = path if (path / "DONE.json").exists() else path.parent
    return json.loads((d / "DONE.json").read_text())


def check_layout(root: Path) -> list[str]:
    """Problems with the generated layout vs the storage contract (empty = fine)."""
    import pyarrow.parquet as pq

    from recorder.schemas import TABLES

    problems = []
    for table in ("action_executions", "executions", "stage_states"):
        f = next((root / table).glob("pipeline=*/dt=*/*.parquet"), None)
        if f is None:
            problems.append(f"{table}: no files")
            continue
        schema = pq.read_schema(f)
        if "pipeline" in schema.names or "dt" in schema.names:
            problems.append(f"{table}: partition columns inside the file")
        want = TABLES[table].schema
        if schema.remove_metadata() != want.remove_metadata():
            problems.append(f"{table}: schema differs: {schema} vs {want}")
    return problems


# --- the 500 x 365 size, built as a cache directly -----------------------------------


def cache_key() -> str:
    """What a generated cache is kept under: the cache's version stamp (a reader of
    another version does not use the file)."""
    from recorder import cache

    return f"v{cache.version()[:12]}"


def template_cache(tdir: Path) -> tuple[Path, float | None]:
    """The template's own query cache (recorder.cache.refresh over its tree), built once.

    Returns (cache file, build seconds or None when it was already built).
    """
    from recorder import cache

    root = tdir / "data"
    path = cache.cache_path(root)
    marker = tdir / f"CACHE-DONE-{cache_key()}"  # a cache of another layout is rebuilt
    if path.exists() and marker.exists():
        return path, None
    path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    cache.refresh(root)
    seconds = time.perf_counter() - t0
    marker.write_text(f"{seconds}\n")
    return path, seconds


def replicated_cache(tdir: Path, copies: int) -> Path:
    """<OUT>/sizes/<P>x<D>-cache-replicated-from-<template>/data: a data root whose
    `.cache/cprec.duckdb` is the template's cache with every pipeline-keyed table
    (and `stage_runs`) replicated `copies` times inside DuckDB, copy k renaming pipeline
    p to `p-rNN` exactly as `replicate` does. Its Parquet tree is empty: the cache path
    never reads it. `cache.files` lists the paths the same size built from files would
    hold (the template's paths, re-rooted and renamed per copy), so an incremental
    refresh pays for a realistic file list; those files do not exist.

    Cached; DONE.json holds the replication time and row counts.
    """
    import duckdb

    from recorder import cache

    meta_t = json.loads((tdir / "DONE.json").read_text())
    src, _ = template_cache(tdir)
    days = _template_days(tdir)
    size = f"{len(meta_t['pipelines']) * copies}x{days}"
    out = OUT / "sizes" / f"{size}-cache-{cache_key()}-replicated-from-{tdir.name}"
    root = (out / "data").resolve()
    done = out / "DONE.json"
    if done.exists():
        return root
    shutil.rmtree(out, ignore_errors=True)
    dest = cache.cache_path(root)
    dest.parent.mkdir(parents=True)
    t0 = time.perf_counter()
    shutil.copyfile(src, dest)
    copy_s = time.perf_counter() - t0
    con = duckdb.connect(str(dest))
    con.execute("SET enable_progress_bar = false")
    tables = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_columns() WHERE schema_name = 'cache' "
            "AND column_name = 'pipeline' AND table_name <> 'files' ORDER BY table_name"
        ).fetchall()
    ]
    per_table = {}
    rename = "t.pipeline || '-r' || lpad(k::VARCHAR, 2, '0')"
    t1 = time.perf_counter()
    for t in tables:
        t2 = time.perf_counter()
        con.execute(
            f"INSERT INTO cache.{t} SELECT t.* REPLACE ({rename} AS pipeline) "
            f"FROM cache.{t} t, range(1, {copies}) r(k)"
        )
        per_table[t] = time.perf_counter() - t2
    t2 = time.perf_counter()
    con.execute("CREATE TEMP TABLE f0 AS SELECT * FROM cache.files")
    con.execute("DELETE FROM cache.files")
    new_name = f"CASE WHEN k = 0 THEN t.pipeline ELSE {rename} END"
    con.execute(
        "INSERT INTO cache.files SELECT "
        f"replace(replace(t.path, $old, $new), '/pipeline=' || t.pipeline || '/', "
        f"'/pipeline=' || {new_name} || '/'), t.tbl, {new_name}, t.dt "
        f"FROM f0 t, range(0, {copies}) r(k) WHERE t.pipeline IS NOT NULL OR k = 0",
        {"old": str((tdir / "data").resolve()), "new": str(root)},
    )
    per_table["files"] = time.perf_counter() - t2
    con.execute("CHECKPOINT")
    replicate_s = time.perf_counter() - t1
    rows = {
        t: con.execute(f"SELECT count(*) FROM cache.{t}").fetchone()[0] for t in [*tables, "files"]
    }
    con.close()
    for name in TIME_TABLES:  # an empty tree: connect() only needs the root to exist
        (root / name).mkdir(exist_ok=True)
    meta = {
        "built_at": time.time(),
        "copy_seconds": copy_s,
        "replicate_seconds": replicate_s,
        "per_table_seconds": per_table,
        "rows": rows,
        "bytes": dest.stat().st_size,
        "pipelines": len(meta_t["pipelines"]) * copies,
        "days": days,
    }
    done.write_text(json.dumps(meta, indent=1))
    return root


def _template_days(tdir: Path) -> int:
    return int(tdir.name.split("-d", 1)[1].split("-", 1)[0])
