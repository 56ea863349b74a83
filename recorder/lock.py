"""One writer per data root: an flock on `<root>/.lock`.

The kernel releases an flock when its holder dies (even by SIGKILL), so a crashed
run never leaves a stale lock behind. A second run exits with EXIT_LOCKED (75).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from recorder.errors import EXIT_LOCKED, UserError

LOCK_FILE = ".lock"


class LockedError(click.ClickException):
    """Another collector (or compaction) holds the lock: one line, exit 75."""

    exit_code = EXIT_LOCKED


@contextmanager
def data_lock(root: Path, name: str = LOCK_FILE, holder: str = "collector") -> Iterator[Path]:
    """Hold `<root>/<name>` exclusively for the block, or raise LockedError at once."""
    path = root / name
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise UserError(f"cannot use data root {root}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise LockedError(f"another {holder} (pid {pid}) holds {path}; exiting") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
