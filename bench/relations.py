"""What each stored relation costs and saves: the table behind "which stored statistics
earn their keep" (bench/RESULTS.md, section 8).

    python bench/relations.py DATA_ROOT [--runs 3]

For a data root with a current query cache (e.g. the 500x365 replicated cache of
gen.replicated_cache), per relation of queries/relations.py:
- rows stored;
- `compute`: computing all its rows from the cache's tables and the relations before it,
  as a query would without the stored rows (the reader's `compute_<name>(defaults)`, or
  the relation's SQL over the stored inputs), best of N;
- `read`: reading the stored rows (`SELECT count(*)` of the stored table), best of N.
A relation is worth storing when `compute` is over what a named query may take (< 1 s)
and the refresh can afford to recompute it for the keys a cron run touches.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import best_of

import queries
from queries.relations import catalog
from recorder import cache, derive


def measure(root: Path, runs: int) -> list[dict]:
    con = queries.connect(root, cache=True)
    out = []
    for rel in catalog().relations:
        rows = con.execute(f"SELECT count(*) FROM cache.{rel.name}").fetchone()[0]
        if rel.params:
            compute = f"SELECT count(*) FROM compute_{rel.name}({derive.defaults(rel)})"
        else:  # the relation's SQL over the stored inputs
            body = derive.expand(rel, lambda n: n if n != rel.name else f"cache.{n}")
            compute = f"SELECT count(*) FROM ({body})"
        t_compute, _ = best_of(lambda sql=compute: con.execute(sql).fetchall(), runs=runs,
                               budget_s=120)  # fmt: skip
        read = f"SELECT count(*) FROM cache.{rel.name}"
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
    if cache.open_reader(args.root)[0] is None:
        print(f"no current cache under {args.root}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    measure(args.root, args.runs)
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
