"""Kernel-released locks (flock) that decide who writes and who may still be reading.

The kernel releases an flock when its holder exits, even by SIGKILL, and before the
process lingers as a zombie, so no lock here is ever stale and no pid is trusted.

- `<root>/.lock`: one collector (or `cprec cache`) at a time. A second exits 75.
- `<root>/.compact.lock`: one compaction at a time (it runs beside a collector).
- `<root>/.read.lock`: every process reading the Parquet files holds it shared while
  it reads; compaction deletes replaced files only while it holds it exclusively,
  so no reader ever finds a file gone that it listed.
- `held_by_someone(path)`: is a marker file locked by a live process? The query
  cache's WRITING marker (recorder/cache.py) is held by the collector writing.
"""

from __future__ import annotations

import fcntl
import os
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recorder.errors import LockedError, UserError

LOCK_FILE = ".lock"
COMPACT_LOCK_FILE = ".compact.lock"
READ_LOCK_FILE = ".read.lock"
# Probes (held_by_someone) hold a shared lock for microseconds: an exclusive taker
# retries this long before it concludes a real holder is there.
PROBE_GRACE_S = 1.0


def _open(path: Path, *, create: bool) -> int | None:
    try:
        return os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
    except FileNotFoundError:
        return None


def _flock_ex(fd: int, patience: float) -> bool:
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


@contextmanager
def data_lock(root: Path, name: str = LOCK_FILE, holder: str = "collector") -> Iterator[Path]:
    """Hold `<root>/<name>` exclusively for the block, or raise LockedError."""
    path = Path(root) / name
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        fd = _open(path, create=True)
    except OSError as e:
        raise UserError(f"cannot use data root {root}: {e.strerror}") from None
    try:
        if not _flock_ex(fd, PROBE_GRACE_S):
            pid = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise LockedError(f"another {holder} (pid {pid}) holds {path}; exiting")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def held_by_someone(path: Path) -> bool:
    """Whether a live process holds an flock on `path` (False when there is no file)."""
    fd = _open(path, create=False)
    if fd is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def hold(path: Path) -> int:
    """Create `path` and hold it exclusively until the returned descriptor is closed."""
    fd = _open(path, create=True)
    fcntl.flock(fd, fcntl.LOCK_EX)  # only probes contend, for microseconds
    return fd


def read_lock(root: Path, owner: object) -> None:
    """Hold `<root>/.read.lock` shared for as long as `owner` (a connection) lives.

    A data root this process cannot write needs no lock: nobody can delete in it.
    """
    try:
        fd = _open(Path(root) / READ_LOCK_FILE, create=True)
    except OSError:
        fd = None
    if fd is None:
        return
    fcntl.flock(fd, fcntl.LOCK_SH)  # compaction holds it exclusively for a moment only
    weakref.finalize(owner, os.close, fd)


@contextmanager
def no_readers(root: Path, patience: float = 5.0) -> Iterator[bool]:
    """Yield True while no process reads the Parquet files (False if readers stayed)."""
    fd = _open(Path(root) / READ_LOCK_FILE, create=True)
    try:
        yield _flock_ex(fd, patience)
    finally:
        os.close(fd)
