"""Item 7: bytes of our Parquet vs the raw JSON API responses for the same rows, per
writer option.

The method of the 7.9× figure (bench/peers.py, RESULTS.md 5b): the ListActionExecutions
pages of one simulated account (compact JSON, byte for byte what the simulator sends over
HTTP and botocore receives, uncompressed) vs the action_executions rows flattened from
them, one Parquet file per (pipeline, day of the action's start).

Each variant changes one lever against today's writer (zstd at pyarrow's default level,
dictionary for every column, statistics, the Arrow schema in the footer, rows in API
order), then the combination store.py now uses (`store.parquet_options`,
`store.sort_rows`), and that combination with one lever changed back or further.

- fresh: what a backfill writes (one file per partition); rows in API order (newest
  first), or in the variant's sort order when it has one;
- compacted: what `cprec compact` leaves (one file per closed partition, whatever the
  number of small cron files it merged): today that is natural-key order
  (action_execution_id); a variant with a sort order compacts in that order.

Bytes are deterministic (every partition). Encode time = sort + options + encode into
memory (no disk) of a sample of the partitions, per file, best of 3. The real collector
path (write_rows: to_arrow, sort, encode, fsync, rename) and the real compaction are timed
on disk on the same sample in the second table, with today's options patched in for
comparison.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from common import OUT, Section, best_of, du
from gen import NOW

COMMON = {
    "account_id": "123456789012",
    "region": "us-east-1",
    "run_id": "bench",
    "recorded_at": NOW,
}
TABLE = "action_executions"
ROUNDS = 5  # the real writers: best of 5, taking turns (the machine is shared and noisy)


def build(pipelines: int, days: int, rate: float) -> Path:
    """rows.arrow (action_executions in API order + pipeline, dt) and meta.json (cached)."""
    import pyarrow as pa
    import pyarrow.feather as feather

    from recorder.flatten import flatten_action_execution
    from recorder.schemas import to_arrow
    from recorder.simulator import Account

    out = OUT / f"storage-p{pipelines}-d{days}-r{rate:g}"
    if (out / "meta.json").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    acct = Account(pipelines=pipelines, days=days, seed=7, now=NOW, rate=rate)
    json_bytes = pages = 0
    rows, names = [], []
    for name in acct.pipeline_names():
        params = {"pipelineName": name, "maxResults": 100}
        while True:
            page = acct.call("ListActionExecutions", params)
            # exactly the body the simulator's server sends (recorder/simulator/server.py)
            json_bytes += len(json.dumps(page, separators=(",", ":")).encode())
            pages += 1
            for d in page["actionExecutionDetails"]:
                rows.append({**COMMON, **flatten_action_execution(d)})
                names.append(name)
            if "nextToken" not in page:
                break
            params["nextToken"] = page["nextToken"]
    t = to_arrow(TABLE, rows)
    t = t.append_column("pipeline", pa.array(names, pa.string()))
    t = t.append_column("dt", pa.array([r["start_time"].date() for r in rows], pa.date32()))
    feather.write_feather(t, out / "rows.arrow", compression="uncompressed")
    meta = {"json_bytes": json_bytes, "pages": pages, "rows": len(rows)}
    (out / "meta.json").write_text(json.dumps(meta))
    return out


def partitions(out: Path) -> list[tuple[str, object, object]]:
    """(pipeline, dt, rows in API order) per partition."""
    import pyarrow.compute as pc
    import pyarrow.feather as feather

    t = feather.read_table(out / "rows.arrow")
    parts = []
    keys = sorted(set(zip(t["pipeline"].to_pylist(), t["dt"].to_pylist(), strict=True)))
    for p, d in keys:
        mask = pc.and_(pc.equal(t["pipeline"], p), pc.equal(t["dt"], d))
        parts.append((p, d, t.filter(mask).drop_columns(["pipeline", "dt"])))
    return parts


# -- variants -------------------------------------------------------------------------


@dataclass
class Variant:
    lever: str
    name: str
    options: Callable  # pa.Table -> write_table kwargs
    sort: list[str] | None = None  # None: API order fresh, natural key compacted
    columns: Callable | None = None  # schema -> physical column order


def _today(data) -> dict:
    return {"compression": "zstd"}


def _kinds(schema) -> tuple[list[str], list[str]]:
    import pyarrow as pa

    strings = [f.name for f in schema if pa.types.is_string(f.type)]
    numbers = [
        f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type)
    ]
    return strings, numbers


def _with(base: Callable, **extra) -> Callable:
    def options(data) -> dict:
        return {**base(data), **extra}

    return options


def _numbers_encoded(encoding: str, base: Callable = _today) -> Callable:
    def options(data) -> dict:
        strings, numbers = _kinds(data.schema)
        return {**base(data), "use_dictionary": strings,
                "column_encoding": dict.fromkeys(numbers, encoding)}  # fmt: skip

    return options


def _adaptive_dictionary(data) -> dict:
    from recorder.store import parquet_options

    return {"compression": "zstd", "use_dictionary": parquet_options(data)["use_dictionary"]}


def variants() -> list[Variant]:
    from recorder.store import parquet_options, sort_key

    key = sort_key(TABLE)
    chosen = parquet_options

    def strings_last(schema):
        strings, _ = _kinds(schema)
        return [n for n in schema.names if n not in strings] + strings

    def reversed_order(schema):
        return list(reversed(schema.names))

    def stats_numbers(data):
        _, numbers = _kinds(data.schema)
        return {**chosen(data), "write_statistics": numbers}

    def dictionary_all(data):
        strings, _ = _kinds(data.schema)
        return {**chosen(data), "use_dictionary": strings}

    return [
        Variant("today", "today's writer", _today),
        Variant(
            "column order", "ints/timestamps first, strings last", _today, columns=strings_last
        ),
        Variant("column order", "reversed", _today, columns=reversed_order),
        Variant("sort", "start_time", _today, sort=["start_time", "action_execution_id"]),
        Variant(
            "sort",
            "execution_id, stage, action",
            _today,
            sort=["execution_id", "stage", "action", "action_execution_id"],
        ),
        Variant("sort", "stage, action, start_time (chosen)", _today, sort=key),
        Variant("dictionary", "none", _with(_today, use_dictionary=False)),
        Variant("dictionary", "where values repeat (chosen)", _adaptive_dictionary),
        Variant(
            "encoding",
            "ints/timestamps DELTA_BINARY_PACKED (chosen)",
            _numbers_encoded("DELTA_BINARY_PACKED"),
        ),
        Variant(
            "encoding", "ints/timestamps BYTE_STREAM_SPLIT", _numbers_encoded("BYTE_STREAM_SPLIT")
        ),
        Variant("encoding", "data page v2", _with(_today, data_page_version="2.0")),
        Variant("statistics", "none (chosen)", _with(_today, write_statistics=False)),
        Variant(
            "statistics",
            "ints/timestamps only",
            lambda d: {**_today(d), "write_statistics": _kinds(d.schema)[1]},
        ),  # fmt: skip
        Variant("footer", "no Arrow schema (chosen)", _with(_today, store_schema=False)),
        Variant("zstd level", "3", _with(_today, compression_level=3)),
        Variant("zstd level", "9", _with(_today, compression_level=9)),
        Variant("zstd level", "15", _with(_today, compression_level=15)),
        Variant("row group / page", "row groups of 64 rows", _with(_today, row_group_size=64)),
        Variant("row group / page", "1 KiB data pages", _with(_today, data_page_size=1024)),
        Variant("combined", "store.py now (all chosen)", chosen, sort=key),
        Variant("combined", "chosen + statistics on ints/timestamps", stats_numbers, sort=key),
        Variant("combined", "chosen, dictionary for every string", dictionary_all, sort=key),
        Variant("combined", "chosen, API order (no sort)", chosen),
        Variant("combined", "chosen + zstd 9", _with(chosen, compression_level=9), sort=key),
    ]


def _prepare(v: Variant, data, compacted: bool):
    from recorder.layout import natural_key
    from recorder.schemas import TABLES

    sort = v.sort
    if sort is None and compacted:  # today's compaction: ORDER BY the natural key
        sort = [c for c in natural_key(TABLES[TABLE]) if c != "pipeline"]
    if sort:
        data = data.sort_by([(c, "ascending") for c in sort])
    if v.columns:
        data = data.select(v.columns(data.schema))
    return data


def _write_all(v: Variant, parts, compacted: bool) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    total = 0
    for _, _, data in parts:
        data = _prepare(v, data, compacted)
        buf = pa.BufferOutputStream()
        pq.write_table(data, buf, **v.options(data))
        total += buf.getvalue().size
    return total


def _cron_files(parts, json_bytes: int, rows: int) -> list:
    """The sampled partitions' rows split as a cron every 5 minutes would write them (one
    file per 5-minute bucket of last_update_time: the run that saw the action end), today
    vs now. The JSON side is the whole dataset's bytes per row times these rows."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from recorder.store import parquet_options, sort_rows

    files = n_rows = 0
    sizes = {"today": 0, "now": 0}
    for _, _, data in parts:
        us = pc.cast(data["last_update_time"], pa.int64()).to_pylist()
        buckets: dict[int, list[int]] = {}
        for i, t in enumerate(us):
            buckets.setdefault(t // 300_000_000, []).append(i)
        for idx in buckets.values():
            small = data.take(idx)
            files += 1
            n_rows += small.num_rows
            now = sort_rows(TABLE, small)
            for label, d, opts in (
                ("today", small, {"compression": "zstd"}),
                ("now", now, parquet_options(now)),
            ):
                buf = pa.BufferOutputStream()
                pq.write_table(d, buf, **opts)
                sizes[label] += buf.getvalue().size
    raw = json_bytes / rows * n_rows
    return [
        f"{len(parts)} partitions → {files:,} files ({n_rows / files:.1f} rows/file)",
        f"{sizes['today']:,} ({raw / sizes['today']:.2f}×)",
        f"{sizes['now']:,} ({raw / sizes['now']:.2f}×)",
        f"{(sizes['now'] - sizes['today']) / sizes['today'] * 100:+.1f} %",
    ]


# -- the real writers, today's options patched in ---------------------------------------


@contextmanager
def today_writer():
    """store.write_rows and compaction as they were: default zstd, rows unsorted,
    compaction in natural-key order."""
    import recorder.compact as compact_mod
    import recorder.store as store_mod
    from recorder.layout import natural_key
    from recorder.schemas import TABLES

    saved = (store_mod.parquet_options, store_mod.sort_rows, compact_mod.sort_rows)

    def natural(table, data):
        key = [c for c in natural_key(TABLES[table]) if c != "pipeline"]
        return data.sort_by([(c, "ascending") for c in key])

    store_mod.parquet_options = _today
    store_mod.sort_rows = lambda table, data: data
    compact_mod.sort_rows = natural
    try:
        yield
    finally:
        store_mod.parquet_options, store_mod.sort_rows, compact_mod.sort_rows = saved


def _write_tree(root: Path, parts, halves: bool) -> int:
    from recorder.store import write_rows

    shutil.rmtree(root, ignore_errors=True)
    files = 0
    for pipeline, dt, data in parts:
        rows = [{**r, "dt": dt} for r in data.to_pylist()]
        chunks = [rows[: len(rows) // 2], rows[len(rows) // 2 :]] if halves else [rows]
        for chunk in chunks:
            if chunk:
                files += len(write_rows(root, TABLE, chunk, pipeline=pipeline, run_id="bench"))
    return files


def _real(work: Path, parts, writers: dict) -> dict:
    """Per writer: write_rows of every partition (one file each), and compact of the same
    rows written as two files per partition; bytes and best-of-ROUNDS times, the writers taking
    turns in each round (so a noisy neighbour hits both alike)."""
    from recorder.compact import compact
    from recorder.store import write_rows

    rows = [(p, d, [{**x, "dt": d} for x in t.to_pylist()]) for p, d, t in parts]
    today = (NOW + timedelta(days=2)).date()
    res = {label: {"write_s": float("inf"), "compact_s": float("inf")} for label in writers}
    for _ in range(ROUNDS):
        for label, ctx in writers.items():
            r = res[label]
            base = work / label.replace(" ", "-")
            with ctx():
                shutil.rmtree(base, ignore_errors=True)
                t0 = time.perf_counter()
                for pipeline, _, x in rows:
                    write_rows(base / "fresh", TABLE, x, pipeline=pipeline, run_id="bench")
                r["write_s"] = min(r["write_s"], time.perf_counter() - t0)
                r["files"], r["fresh_bytes"] = du(base / "fresh")
                _write_tree(base / "cron", parts, halves=True)
                t0 = time.perf_counter()
                c = compact(base / "cron", today=today, grace=timedelta(0))
                r["compact_s"] = min(r["compact_s"], time.perf_counter() - t0)
                r["partitions"] = c.partitions
                r["compact_files"], r["compact_bytes"] = du(base / "cron")
    shutil.rmtree(work, ignore_errors=True)
    return res


def bench_storage(
    pipelines: int,
    days: int,
    rate: float,
    sec: Section,
    real: Section,
    timed_parts: int,
    cron: Section | None = None,
) -> dict:
    """Sizes over every partition; times over `timed_parts` of them (every k-th)."""
    out = build(pipelines, days, rate)
    meta = json.loads((out / "meta.json").read_text())
    parts = partitions(out)
    some = parts[:: max(1, len(parts) // timed_parts)][:timed_parts]
    jb = meta["json_bytes"]
    found = {}
    base = None
    for v in variants():
        fresh = _write_all(v, parts, compacted=False)
        comp = _write_all(v, parts, compacted=True)
        t, _ = best_of(lambda v=v: _write_all(v, some, compacted=False), budget_s=60)
        if base is None:
            base = (fresh, comp, t)
        found[v.name] = (fresh, comp, t)
        sec.add(
            v.lever,
            v.name,
            f"{fresh:,}",
            f"{jb / fresh:.2f}×",
            f"{(fresh - base[0]) / base[0] * 100:+.1f} %",
            f"{comp:,}",
            f"{jb / comp:.2f}×",
            f"{(comp - base[1]) / base[1] * 100:+.1f} %",
            f"{t / len(some) * 1000:.2f} ms",
            f"{t / base[2]:.2f}×",
        )
    if cron is not None:
        cron.add(*_cron_files(some, jb, meta["rows"]))
    runs = _real(out / "real", some, {"today": today_writer, "store.py now": _nothing})
    b = runs["today"]
    for label, r in runs.items():
        real.add(
            label,
            f"{r['files']:,}",
            f"{r['fresh_bytes']:,}",
            f"{r['write_s'] / r['files'] * 1000:.2f} ms",
            f"{r['write_s'] / b['write_s']:.2f}×",
            f"{r['partitions']:,} → {r['compact_files']:,} files",
            f"{r['compact_bytes']:,}",
            f"{r['compact_s'] / r['partitions'] * 1000:.1f} ms",
            f"{r['compact_s'] / b['compact_s']:.2f}×",
        )
    return {"meta": meta, "partitions": len(parts), "variants": found, "real": runs}


@contextmanager
def _nothing():
    yield
