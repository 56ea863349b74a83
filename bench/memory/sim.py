"""Simulator child as bench/collection.py's SIM_CHILD, plus: each stdin line 'N' advances the
clock N minutes (prints the new now). Prints the endpoint URL first."""

import os
import sys
import threading
from datetime import datetime

sys.path.insert(0, os.environ.get("CHECKOUT", "."))
from recorder.simulator import Account, SimulatorServer

p, d, rate, now = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
acct = Account(pipelines=p, days=d, seed=7, now=datetime.fromisoformat(now), rate=rate)
srv = SimulatorServer(acct, port=0)
print(srv.endpoint_url, flush=True)


def ctl():
    for line in sys.stdin:
        if line.strip():
            print("now", acct.advance(float(line)), flush=True)


threading.Thread(target=ctl, daemon=True).start()
srv.serve_forever()
