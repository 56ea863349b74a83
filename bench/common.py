"""Shared bench helpers: timing, machine description, the results table, the simulator."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = Path(os.environ.get("BENCH_OUT") or BENCH / "out")  # BENCH_OUT: elsewhere
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def dummy_credentials() -> None:
    # botocore signs every request; the simulator does not check signatures.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def du(path: Path) -> tuple[int, int]:
    """(files, bytes) of the *.parquet files under path."""
    files = n = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            if name.endswith(".parquet"):
                files += 1
                n += os.path.getsize(os.path.join(dirpath, name))
    return files, n


def best_of(
    fn: Callable[[], object], *, runs: int = 3, budget_s: float = 20.0
) -> tuple[float, int]:
    """Best wall time of `runs` calls after one warm-up; fewer runs when one is slow.

    Returns (seconds, timed runs). The warm-up is discarded (OS cache, DuckDB metadata).
    """
    t0 = time.perf_counter()
    fn()
    warm = time.perf_counter() - t0
    runs = runs if warm * runs <= budget_s else 1
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best, runs


@contextmanager
def timed(store: dict, key: str):
    t0 = time.perf_counter()
    yield
    store[key] = time.perf_counter() - t0


def machine() -> dict[str, str]:
    import duckdb
    import pandas
    import pyarrow

    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem_kb = int(line.split()[1])
    return {
        "cpus (nproc)": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "cpu": cpu,
        "ram": f"{mem_kb / 1024**2:.0f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
        "pandas": pandas.__version__,
    }


@dataclass
class Section:
    title: str
    note: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells) -> None:
        self.rows.append([fmt(c) for c in cells])
        print("  " + " | ".join(self.rows[-1]), flush=True)

    def markdown(self) -> str:
        out = [f"### {self.title}", ""]
        if self.note:
            out += [self.note, ""]
        out.append("| " + " | ".join(self.header) + " |")
        out.append("|" + "---|" * len(self.header))
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(out) + "\n"

    def text(self) -> str:
        table = [self.header, *self.rows]
        widths = [
            max(len(r[i]) if i < len(r) else 0 for r in table) for i in range(len(self.header))
        ]
        lines = [f"== {self.title}"]
        for j, r in enumerate(table):
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)))
            if j == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def fmt(v) -> str:
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def secs(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"
