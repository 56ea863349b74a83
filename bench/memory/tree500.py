"""The 500x365 hard-linked Parquet tree (gen.replicate) + the replicated cache copied into it
with cache.files re-rooted, so `cprec cache` and `--rebuild` have real files to walk/read."""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CHECKOUT", "."), "bench"))
sys.path.insert(0, os.environ.get("CHECKOUT", "."))
import duckdb
import gen

from recorder import cache

tdir = gen.template(10, 365, 45)
t0 = time.perf_counter()
root = gen.replicate(tdir, 500, 365)
print(
    "tree",
    root,
    gen.meta(root)["files"],
    "files",
    round(time.perf_counter() - t0, 1),
    "s",
    flush=True,
)
src_root = gen.replicated_cache(tdir, 50)
dest = cache.cache_path(root)
dest.parent.mkdir(parents=True, exist_ok=True)
shutil.copyfile(cache.cache_path(src_root), dest)
con = duckdb.connect(str(dest))
con.execute(
    "UPDATE cache.files SET path = replace(path, $old, $new)",
    {"old": str(src_root), "new": str(root.resolve())},
)
n = con.execute(
    "SELECT count(*), count(*) FILTER (WHERE path LIKE $p || '%') FROM cache.files",
    {"p": str(root.resolve())},
).fetchall()
con.execute("CHECKPOINT")
con.close()
print("cache copied", dest, n, round(time.perf_counter() - t0, 1), "s", flush=True)
