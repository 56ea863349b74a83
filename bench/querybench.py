"""Items 3 and 6: named-query latency per connection factory and size; the bare-scan floor.

A factory is `root -> DuckDB connection with the views`; each is one column of the
table, so another storage variant is one more entry in `factories()`.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from common import Section, best_of, ratio, secs
from gen import NOW

Factory = Callable[[Path], object]
TARGETS = {"stage-durations": 2.0, "failure-rates": 2.0, "current-state": 0.5}


def parquet_views(root: Path):
    import queries

    return queries.connect(root, cache=False)


def cache_connect(root: Path):
    """The user's path: `queries.connect(root, cache=True)` (attaches the cache read-only,
    creates the macros and the cache's views; no Parquet view is created)."""
    import queries

    return queries.connect(root, cache=True)


def factories() -> dict[str, Factory]:
    return {"parquet views": parquet_views, "cache": cache_connect}


def build_cache(root: Path) -> tuple[float, int]:
    from recorder import cache

    t0 = time.perf_counter()
    r = cache.refresh(root)
    return time.perf_counter() - t0, r.files_loaded


def _run(factory: Factory, root: Path, name: str):
    import queries

    con = factory(root)
    try:
        return queries.run_query(con, name, now=NOW).num_rows
    finally:
        con.close()


def _timed_child(conn, fname, root, name, runs):
    fac = factories()[fname]
    try:
        t0 = time.perf_counter()
        con = fac(root)
        connect_s = time.perf_counter() - t0
        con.close()
        best = float("inf")
        for _ in range(runs):
            t0 = time.perf_counter()
            _run(fac, root, name)
            best = min(best, time.perf_counter() - t0)
        conn.send((connect_s, best))
    except Exception as e:  # noqa: BLE001 - reported in the table
        conn.send(("error", f"{type(e).__name__}: {e}"[:120]))


def _in_child(target, args: tuple, timeout: float):
    """Run target(conn, *args) in a forked child; what it sends, or None on timeout."""
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


def time_query(fname: str, root: Path, name: str, *, runs: int, timeout: float):
    """(connect s, best query s incl. connect) in a child process, or None on timeout."""
    return _in_child(_timed_child, (fname, root, name, runs), timeout)


def bench_queries(
    sizes: dict[str, Path], sec: Section, *, full_views_max_files: int, timeout: float
) -> dict:
    """Every named query at every size with every factory.

    cache: best of 3 after a warm-up, fresh connection each time. Parquet views: when a
    size has more than `full_views_max_files` files only the three target queries run, once
    after a warm-up, each capped at `timeout` s (the cost is binding every file's schema).
    """
    from common import du

    import queries

    results = {}
    names = list(queries.named_queries())
    for label, root in sizes.items():
        files = du(root)[0]
        for name in names:
            row = [name, label]
            for fname, fac in factories().items():
                if (
                    fname == "parquet views"
                    and files > full_views_max_files
                    and name not in TARGETS
                ):
                    row.append("skipped")
                    continue
                if fname == "parquet views":
                    r = time_query(
                        fname,
                        root,
                        name,
                        runs=1 if files > full_views_max_files else 2,
                        timeout=timeout,
                    )
                    if r is None:
                        row.append(f"> {timeout:.0f} s")
                        results[(name, label, fname)] = None
                        continue
                    if r[0] == "error":
                        row.append(r[1])
                        continue
                    t = r[1]
                else:
                    t, _ = best_of(
                        lambda fac=fac, name=name, root=root: _run(fac, root, name),
                        runs=3,
                        budget_s=10,
                    )
                results[(name, label, fname)] = t
                row.append(secs(t))
            target = TARGETS.get(name)
            t_cache = results.get((name, label, "cache"))
            row.append(
                f"< {target:g} s: {'yes' if t_cache is not None and t_cache < target else 'no'}"
                if target
                else ""
            )
            sec.add(*row)
    return results


def growth(results: dict, sizes: dict[str, Path], rows: dict[str, int], sec: Section) -> None:
    labels = list(sizes)
    base = labels[0]
    import queries

    for name in queries.named_queries():
        for fname in factories():
            t0 = results.get((name, base, fname))
            cells = []
            for lab in labels[1:]:
                t = results.get((name, lab, fname))
                cells.append(
                    f"{t / t0:.1f}× time for {rows[lab] / rows[base]:.1f}× rows"
                    if t and t0
                    else "-"
                )
            if any(c != "-" for c in cells):
                sec.add(name, fname, *cells)


FLOOR_SQL = """
WITH runs AS (
    SELECT pipeline, execution_id, stage,
           min(start_time) AS s, max(last_update_time) AS e,
           count(*) FILTER (WHERE status = 'InProgress') AS ip
    FROM read_parquet('{glob}', hive_partitioning = true,
                      hive_types = {{'pipeline': VARCHAR, 'dt': DATE}})
    GROUP BY ALL
)
SELECT pipeline, stage, count(*) AS executions,
       quantile_cont((epoch_us(e) - epoch_us(s)) / 1e6, [0.5, 0.9, 0.95]) AS q,
       max((epoch_us(e) - epoch_us(s)) / 1e6), avg((epoch_us(e) - epoch_us(s)) / 1e6)
FROM runs WHERE ip = 0 GROUP BY ALL
"""


def floor_time(root: Path, timeout: float):
    """Bare DuckDB scan of the columns stage-durations needs: no views, no dedup."""

    def child(conn):
        import duckdb

        con = duckdb.connect()
        sql = FLOOR_SQL.format(
            glob=root / "action_executions" / "pipeline=*" / "dt=*" / "*.parquet"
        )
        t, _ = best_of(lambda: con.sql(sql).fetchall(), runs=3, budget_s=timeout / 3)
        conn.send(t)

    return _in_child(child, (), timeout)


def floor_cache(root: Path) -> float:
    """The same bare aggregate over the cache's deduplicated action_executions table."""
    con = cache_connect(root)
    # The bare aggregate holds every duration of a group at once (a percentile is not
    # spilled): at 500x365 it needs ~1 GB, over the 256MB a cprec reader gets by default.
    # The floor is DuckDB's, not a cprec command: it gets what it needs.
    con.execute("SET memory_limit = '4GB'")
    sql = (
        FLOOR_SQL.split("FROM read_parquet")[0]
        + "FROM cache.action_executions GROUP BY ALL\n)"  # the cache file is the database
        + FLOOR_SQL.split("GROUP BY ALL\n)", 1)[1]
    )
    t, _ = best_of(lambda: con.sql(sql).fetchall(), runs=3)
    con.close()
    return t


def bench_floor(sizes: dict[str, Path], results: dict, sec: Section, timeout: float) -> None:
    from common import du

    for label, root in sizes.items():
        has_files = du(root)[0] > 0
        f = floor_time(root, timeout) if has_files else None
        fc = floor_cache(root)
        sd = results.get(("stage-durations", label, "parquet views"))
        sc = results.get(("stage-durations", label, "cache"))
        sec.add(
            label,
            secs(f) if f else f"> {timeout:.0f} s" if has_files else "not run (no Parquet)",
            secs(sd) if sd else "-",
            ratio(sd, f) if sd and f else "-",
            secs(fc),
            secs(sc) if sc else "-",
            ratio(sc, fc) if sc else "-",
            ratio(sc, f) if sc and f else "-",
        )


# --- the size built as a cache by replication (gen.replicated_cache) ------------------

CRON_RUN_ID = "bench-cron"
CRON_TABLES = ("action_executions", "executions", "execution_revisions", "stage_states")


def bench_big_queries(label: str, root: Path, sec: Section, *, budget_s: float) -> dict:
    """Every named query through `queries.connect(root, cache=True)`: best of 3 after a
    warm-up, a fresh connection each time (connect included); a query whose warm-up
    times 3 exceeds `budget_s` gets one timed run."""
    import queries

    results = {}
    for name in queries.named_queries():
        t, runs = best_of(
            lambda name=name: _run(cache_connect, root, name), runs=3, budget_s=budget_s
        )
        results[(name, label, "cache")] = t
        target = TARGETS.get(name)
        sec.add(
            name,
            label,
            secs(t) + ("" if runs == 3 else f" ({runs} run)"),
            f"< {target:g} s: {'yes' if t < target else 'no'}" if target else "",
        )
    return results


def cron_rows(root: Path, pipelines: int) -> dict[tuple[str, str], list[dict]]:
    """One simulated cron run's new rows, {(table, pipeline): rows}: for each of
    `pipelines` pipelines, one new execution (a copy of its latest recorded execution
    that has revisions, under a new id: executions, execution_revisions,
    action_executions) and one state snapshot 5 minutes after now (a copy of its latest,
    stage_states): 4 partitions, so 4 files, per pipeline.
    """
    import duckdb

    from recorder import cache

    con = duckdb.connect(str(cache.cache_path(root)), read_only=True)
    names = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT pipeline FROM cache.executions ORDER BY pipeline"
        ).fetchall()
    ]
    chosen = names[:: max(1, len(names) // pipelines)][:pipelines]
    con.execute(
        "CREATE TEMP TABLE pick AS SELECT pipeline, max_by(execution_id, start_time) AS "
        "execution_id, row_number() OVER (ORDER BY pipeline) AS i FROM cache.executions e "
        "SEMI JOIN cache.execution_revisions r USING (pipeline, execution_id) "
        "WHERE list_contains($c, pipeline) GROUP BY pipeline",
        {"c": chosen},
    )
    stamp = NOW + timedelta(minutes=5)
    out: dict[tuple[str, str], list[dict]] = {}
    for table in CRON_TABLES:
        if table == "stage_states":
            sql = (
                "SELECT s.*, p.i FROM cache.stage_states s JOIN pick p USING (pipeline) "
                "QUALIFY s.snapshot_at = max(s.snapshot_at) OVER (PARTITION BY s.pipeline)"
            )
        else:
            sql = f"SELECT t.*, p.i FROM cache.{table} t JOIN pick p USING (pipeline, execution_id)"
        for r in con.sql(sql).to_arrow_table().to_pylist():
            new_eid = f"{CRON_RUN_ID}-{r.pop('i'):05d}"
            r.update(run_id=CRON_RUN_ID, recorded_at=stamp)
            if table == "stage_states":
                r.update(snapshot_at=stamp, dt=stamp.date())
            else:
                r["execution_id"] = new_eid
            if table == "action_executions":
                r["action_execution_id"] = f"{new_eid}-{r['action_execution_id']}"
            out.setdefault((table, r.pop("pipeline")), []).append(r)
    con.close()
    return out


def _undo_cron(root: Path, written: list[Path]) -> None:
    """Remove what `cron_rows` added, so the (expensive) cache is reusable next run: the
    rows of the cron run go, and the derived and stored rows of their executions and
    pipelines are recomputed (the cache's own refresh step, in one transaction)."""
    from recorder import cache

    with cache.Cache(root) as c:
        con = c.con
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE touched_execution AS SELECT DISTINCT account_id, "
            "region, pipeline, execution_id FROM cache.executions WHERE run_id = ?",
            [CRON_RUN_ID],
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE touched_pipeline AS "
            "SELECT DISTINCT account_id, region, pipeline FROM touched_execution"
        )
        for table in CRON_TABLES:
            con.execute(f"DELETE FROM cache.{table} WHERE run_id = ?", [CRON_RUN_ID])
        con.execute(
            "DELETE FROM cache.files WHERE list_contains($p, path)",
            {"p": [str(p) for p in written]},
        )
        c.whole = set()  # every relation, for just the keys touched
        c._refresh_derived()
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    for p in written:
        p.unlink()


def bench_incremental_refresh(root: Path, pipelines: int, rounds: int = 2) -> list[dict]:
    """Time `recorder.cache.refresh(root, written=...)` for one cron run's new files,
    `rounds` times (new files, refresh, undo), each a fresh Cache handle as in a cron run."""
    from recorder import cache
    from recorder.store import write_rows

    # Until the undo is done the size is not reusable: a crash makes gen rebuild it.
    (root.parent / "DONE.json").rename(root.parent / "DONE.json.pending")
    out = []
    for _ in range(rounds):
        new_rows = cron_rows(root, pipelines)
        t0 = time.perf_counter()
        written = [
            path
            for (table, pipeline), rows in new_rows.items()
            for path in write_rows(root, table, rows, pipeline=pipeline, run_id=CRON_RUN_ID)
        ]
        write_s = time.perf_counter() - t0
        before = _cache_counts(root)
        t0 = time.perf_counter()
        r = cache.refresh(root, written=written)
        refresh_s = time.perf_counter() - t0
        after = _cache_counts(root)
        t0 = time.perf_counter()
        _undo_cron(root, written)
        undo_s = time.perf_counter() - t0
        assert _cache_counts(root) == before, "undo left rows behind"
        out.append(
            {
                "pipelines": len({p for _, p in new_rows}),
                "files": len(written),
                "write_s": write_s,
                "refresh_s": refresh_s,
                "files_loaded": r.files_loaded,
                "rows_added": {t: after[t] - before[t] for t in after if after[t] != before[t]},
                "undo_s": undo_s,
            }
        )
    (root.parent / "DONE.json.pending").rename(root.parent / "DONE.json")
    return out


def _cache_counts(root: Path) -> dict[str, int]:
    import duckdb

    from queries.relations import catalog
    from recorder import cache

    con = duckdb.connect(str(cache.cache_path(root)), read_only=True)
    out = {
        t: con.execute(f"SELECT count(*) FROM cache.{t}").fetchone()[0]
        for t in (*CRON_TABLES, *catalog().names, "files")
    }
    con.close()
    return out
