"""Items 3 and 6: named-query latency per connection factory and size; the bare-scan floor.

A factory is `root -> DuckDB connection with the views`; each is one column of the
table, so another storage variant is one more entry in `factories()`.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from pathlib import Path

from common import Section, best_of, ratio, secs
from gen import NOW

Factory = Callable[[Path], object]
TARGETS = {"stage-durations": 2.0, "failure-rates": 2.0, "current-state": 0.5}


def parquet_views(root: Path):
    import queries

    return queries.connect(root, cache=False)


def cache_lean(root: Path):
    """The cache's tables, without binding the Parquet views first.

    `queries.connect(root, cache=True)` creates every raw Parquet view before pointing
    the views at the cache, and creating a view over `read_parquet(glob,
    union_by_name=true)` reads the schema of every file: O(files) on each connect.
    This factory does only what the named queries need (macros + the cache views).
    """
    import duckdb

    from queries import cache
    from queries.views import sql_file

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(sql_file("_macros.sql"))
    cache.attach_views(con, root)
    return con


def factories() -> dict[str, Factory]:
    return {"parquet views": parquet_views, "cache": cache_lean}


def build_cache(root: Path) -> tuple[float, int]:
    from queries import cache

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


def time_query(fname: str, root: Path, name: str, *, runs: int, timeout: float):
    """(connect s, best query s incl. connect) in a child process, or None on timeout."""
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    p = ctx.Process(target=_timed_child, args=(b, fname, root, name, runs))
    p.start()
    if a.poll(timeout):
        out = a.recv()
        p.join()
        return out
    p.kill()
    p.join()
    return None


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
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()

    def child(conn):
        import duckdb

        con = duckdb.connect()
        sql = FLOOR_SQL.format(
            glob=root / "action_executions" / "pipeline=*" / "dt=*" / "*.parquet"
        )
        t, _ = best_of(lambda: con.sql(sql).fetchall(), runs=3, budget_s=timeout / 3)
        conn.send(t)

    p = ctx.Process(target=child, args=(b,))
    p.start()
    if a.poll(timeout):
        t = a.recv()
        p.join()
        return t
    p.kill()
    p.join()
    return None


def floor_cache(root: Path) -> float:
    """The same bare aggregate over the cache's deduplicated action_executions table."""
    con = cache_lean(root)
    sql = (
        FLOOR_SQL.split("FROM read_parquet")[0]
        + "FROM cpcache.cache.action_executions GROUP BY ALL\n)"
        + FLOOR_SQL.split("GROUP BY ALL\n)", 1)[1]
    )
    t, _ = best_of(lambda: con.sql(sql).fetchall(), runs=3)
    con.close()
    return t


def bench_floor(sizes: dict[str, Path], results: dict, sec: Section, timeout: float) -> None:
    for label, root in sizes.items():
        f = floor_time(root, timeout)
        fc = floor_cache(root)
        sd = results.get(("stage-durations", label, "parquet views"))
        sc = results.get(("stage-durations", label, "cache"))
        sec.add(
            label,
            secs(f) if f else f"> {timeout:.0f} s",
            secs(sd) if sd else "-",
            ratio(sd, f) if sd and f else "-",
            secs(fc),
            secs(sc) if sc else "-",
            ratio(sc, fc) if sc else "-",
            ratio(sc, f) if sc and f else "-",
        )
