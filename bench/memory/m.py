"""Run a command under /usr/bin/time -v, append {label, wall, rss} to results.jsonl.
Usage: m.py LABEL RUNS [--out FILE] -- cmd args...   (stdout to /dev/null or FILE)"""

import json
import os
import subprocess
import sys
import tempfile
import time

label, runs = sys.argv[1], int(sys.argv[2])
rest = sys.argv[3:]
out = "/dev/null"
if rest[0] == "--out":
    out, rest = rest[1], rest[2:]
assert rest[0] == "--"
cmd = rest[1:]
for i in range(runs):
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf, open(out, "w") as fo:
        t0 = time.perf_counter()
        p = subprocess.run(
            ["/usr/bin/time", "-v", "-o", tf.name, *cmd],
            stdout=fo,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.makedirs(os.environ.get("MEMORY_LOGS", "logs"), exist_ok=True)
        with open(
            os.path.join(
                os.environ.get("MEMORY_LOGS", "logs"),
                label.replace("/", "_").replace(" ", "_") + ".log",
            ),
            "a",
        ) as lf:
            lf.write(f"--- run {i + 1}: {cmd}\n" + p.stderr)
        wall = time.perf_counter() - t0
        info = {}
        for line in open(tf.name):
            k, _, v = line.strip().rpartition(": ")
            info[k] = v
    rss_kb = int(info.get("Maximum resident set size (kbytes)", 0))
    el = info.get("Elapsed (wall clock) time (h:mm:ss or m:ss)", "")
    rec = {
        "label": label,
        "run": i + 1,
        "wall_s": round(wall, 3),
        "elapsed": el,
        "rss_mb": round(rss_kb / 1024, 1),
        "user_s": float(info.get("User time (seconds)", 0)),
        "sys_s": float(info.get("System time (seconds)", 0)),
        "exit": p.returncode,
        "cmd": " ".join(cmd),
        "stderr_tail": p.stderr.strip().splitlines()[-3:] if p.returncode else [],
        "at": time.strftime("%H:%M:%S"),
        "load1": float(open("/proc/loadavg").read().split()[0]),
    }
    print(json.dumps(rec), flush=True)
    with open("" + os.environ.get("MEMORY_RESULTS", "results.jsonl") + "", "a") as fh:
        fh.write(json.dumps(rec) + "\n")
