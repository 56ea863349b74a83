"""Deterministic kill points for the crash tests (no sleeps, no races).

`CPREC_TEST_KILL_AT="<point>:<n>"` makes this process SIGKILL itself the n-th time it
passes `checkpoint("<point>")`. Unset (always, outside the tests) it costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from threading import Lock

KILL_ENV = "CPREC_TEST_KILL_AT"
_passed: Counter = Counter()
_lock = Lock()


def checkpoint(point: str) -> None:
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return
    name, _, nth = spec.rpartition(":")
    if name != point:
        return
    with _lock:
        _passed[point] += 1
        if _passed[point] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
