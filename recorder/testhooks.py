"""Deterministic kill points for the crash tests (no sleeps, no races).

`CPREC_TEST_KILL_AT="<point>:<n>"` makes this process SIGKILL itself the n-th time it
passes `checkpoint("<point>")`. `CPREC_TEST_TRACE=<file>` appends every point passed to
that file, one a line, so a crash matrix can list every (point, n) a run passes and
kill it at each. Unset (always, outside the tests) they cost two dictionary lookups.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from threading import Lock

KILL_ENV = "CPREC_TEST_KILL_AT"
TRACE_ENV = "CPREC_TEST_TRACE"
_passed: Counter = Counter()
_lock = Lock()


def checkpoint(point: str) -> None:
    trace = os.environ.get(TRACE_ENV)
    if trace:
        with _lock, open(trace, "a") as fh:
            fh.write(point + "\n")
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
