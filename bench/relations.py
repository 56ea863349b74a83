"""What each stored relation costs and saves: the table behind "which stored statistics
earn their keep" (bench/RESULTS.md, section 8).

    python bench/relations.py DATA_ROOT [--runs 3]

For a data root with a query cache (e.g. the 500x365 replicated cache of
gen.replicated_cache; any version's, the relations' SQL is this checkout's), per relation
of queries/relations.py:
- rows stored;
- `compute`: computing all its rows from the cache's tables and the stored rows of the
  relations before it, as a query would without its stored rows, best of N;
- `read`: reading the stored rows (`SELECT count(*)` of the stored table), best of N.
A relation is worth storing when `compute` is over what a named query may take (< 1 s)
and the refresh can afford to recompute it for the keys a cron run touches.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb
from common import best_of

from queries.relations import catalog
from recorder import cache, derive


def measure(path: Path, runs: int) -> list[dict]:
    """Each relation of this checkout's catalog over the cache file `path` (opened
    read-only, whatever version wrote it: its tables are read, its relations' stored rows
    are the inputs of the next ones)."""
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET enable_progress_bar = false")
    # (DuckDB's default, 80 % of the RAM, starves a shared machine)
    con.execute("SET memory_limit = '4GB'")
    con.execute(derive.status_macros(temp=True))
    con.execute(derive.macro_sql(catalog().macros, temp=True))
    out = []
    for rel in catalog().relations:
        rows = con.execute(f"SELECT count(*) FROM cache.{rel.name}").fetchone()[0]
        body = derive.expand(rel, lambda n: f"cache.{n}")
        if rel.params:
            con.execute(f"CREATE OR REPLACE TEMP MACRO bench_compute({', '.join(rel.params)}) "
                        f"AS TABLE {body}")  # fmt: skip
            body = f"SELECT * FROM bench_compute({derive.defaults(rel)})"
        # every column (a count alone lets DuckDB drop the aggregates no one reads)
        compute = f"SELECT count(*), sum(hash(t)) FROM ({body}) AS t"
        t_compute, _ = best_of(lambda sql=compute: con.execute(sql).fetchall(), runs=runs,
                               budget_s=120)  # fmt: skip
        read = f"SELECT count(*), sum(hash(t)) FROM cache.{rel.name} AS t"
        t_read, _ = best_of(lambda sql=read: con.execute(sql).fetchall(), runs=runs)
        out.append({"relation": rel.name, "grain": rel.grain, "rows": rows,
                    "compute_s": t_compute, "read_s": t_read})  # fmt: skip
        print(f"{rel.name:24} {rel.grain:9} {rows:>12,} compute {t_compute:8.3f} s "
              f"read {t_read:6.3f} s", flush=True)  # fmt: skip
    con.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    path = cache.cache_path(args.root)
    if not path.exists():
        print(f"no cache under {args.root}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    measure(path, args.runs)
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
