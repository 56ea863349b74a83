"""A first cache build (`recorder.cache.refresh` over a whole tree into no cache), in
files/s, for this checkout and optionally another one ("before"), in one run.

    python bench/cachebuild.py --sizes 20x90,50x365 --runs 3 --before /path/to/old/checkout

Each build runs in a fresh process whose PYTHONPATH is the checkout, on the same
hard-linked size (bench/gen.py), the cache deleted before each; the two checkouts
alternate, and the table shows the best of `--runs` for each (the machine is shared:
compare the two columns of one run, not runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gen
from common import Section, du, secs

HERE = Path(__file__).resolve().parent

CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[2])  # the checkout, ahead of an editable install's finder
from pathlib import Path
from recorder import cache
root = Path(sys.argv[1])
t0 = time.perf_counter()
r = cache.refresh(root)
print(json.dumps({"seconds": time.perf_counter() - t0, "files": r.files_loaded,
                  "code": str(Path(cache.__file__).parent.parent)}))
"""

# The floor under any first build: every table's files copied as they are into one new
# DuckDB file in one transaction (CREATE TABLE AS read_parquet, union_by_name), with no
# schema check, no deduplication, no derived table and no file list. What a build must
# at least pay to read and store the rows.
FLOOR = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
from pathlib import Path
import duckdb
from recorder import cache, layout
root = Path(sys.argv[1])
t0 = time.perf_counter()
try:  # a checkout from before recorder/root.py lists a plain path
    from recorder.root import DataRoot
    listing = layout.list_files(DataRoot.of(root))
except ImportError:
    listing = layout.list_files(root)
path = cache.cache_path(root)
path.parent.mkdir(parents=True, exist_ok=True)
con = duckdb.connect(str(path))
con.execute("SET preserve_insertion_order = false")
con.execute("BEGIN TRANSACTION")
files = 0
for name, paths in listing.items():
    if paths:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet($f, union_by_name = true)",
                    {"f": [str(p) for p in paths]})
        files += len(paths)
con.execute("COMMIT")
con.close()
print(json.dumps({"seconds": time.perf_counter() - t0, "files": files, "code": sys.argv[2]}))
"""


def build_once(code: Path, root: Path, *, floor: bool = False) -> dict:
    """One first build of `root`'s cache with the recorder of checkout `code` (`floor`:
    the bare copy of FLOOR instead)."""
    shutil.rmtree(root / ".cache", ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(code))
    out = subprocess.run(
        [sys.executable, "-c", FLOOR if floor else CHILD, str(root), str(code.resolve())],
        env=env,
        cwd=code,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert Path(result["code"]) == code.resolve(), result  # the checkout asked for ran
    shutil.rmtree(root / ".cache", ignore_errors=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20x90,50x365", help="PxD,PxD (hard-linked sizes)")
    ap.add_argument("--runs", type=int, default=3, help="builds per checkout and size (best)")
    ap.add_argument("--before", type=Path, help="another checkout to compare (e.g. main)")
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also time FLOOR (the rows copied as they are: no build can be faster)",
    )
    args = ap.parse_args()
    codes = {"after (this checkout)": HERE.parent}
    if args.before:
        codes = {"before": args.before.resolve(), **codes}
    tdir = gen.template(10, 365, 45)
    if args.floor:
        codes["floor"] = HERE.parent
    sec = Section(
        "Cache build: first build over files",
        note=f"recorder.cache.refresh(root) in a fresh process per build, no cache before; "
        f"checkouts alternate; best of {args.runs}.",
        header=["size", "Parquet files", *[f"{c}: best of {args.runs}" for c in codes],
                "speed-up",
                *(["floor's speed-up"] if args.before and args.floor else [])],
    )  # fmt: skip
    for spec in args.sizes.split(","):
        p, d = (int(x) for x in spec.split("x"))
        root = gen.replicate(tdir, p, d)
        files = du(root)[0]
        best: dict[str, float] = {}
        for _ in range(args.runs):
            for label, code in codes.items():
                r = build_once(code, root, floor=label == "floor")
                assert r["files"] == files, (r, files)
                best[label] = min(best.get(label, float("inf")), r["seconds"])
                print(f"  {spec} {label}: {secs(r['seconds'])}", flush=True)
        cells = [f"{secs(s)} ({files / s:,.0f} files/s)" for s in best.values()]
        ratio = f"{best['before'] / best['after (this checkout)']:.2f}×" if args.before else ""
        extra = [f"{best['before'] / best['floor']:.2f}×"] if args.before and args.floor else []
        sec.add(f"{p}×{d}", files, *cells, ratio, *extra)
    print(sec.text())
    print(sec.markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
