"""Seed a data root for cron-run measurements with bench/gen.py's template helper
(simulated account in-process, flattened, real layout), its clock at NOW_CRON instead of
gen.NOW. Usage: BENCH_OUT=$OUT/cron-seed python seed.py P D RATE"""

import os
import sys
from datetime import datetime

sys.path.insert(0, os.path.join(os.environ.get("CHECKOUT", "."), "bench"))
import gen

NOW_CRON = datetime.fromisoformat("2026-12-07T00:00:00+00:00")
gen.NOW = NOW_CRON
p, d, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
t = gen.template(p, d, rate)
m = gen.meta(t)
print(t, m["seconds"], m["rows"])
