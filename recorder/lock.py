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

These take local directories; recorder/root.py chooses, per kind of data root, them
or the S3 lease below. In an S3 data root there is no kernel to release a lock, so
`.lock` and `.compact.lock` are lease objects (`lease`): created by a conditional PUT
(`If-None-Match: *`, which exactly one contender wins) carrying the owner and an
expiry, renewed by the holder (`If-Match` on its own version), deleted when it
ends. A crashed holder's lease lapses at its expiry; a contender takes a lapsed one
over with `If-Match` on the version it read, so two never both take it. A holder
that could not renew in time (paused past the expiry) learns it at its next renewal
and logs it: a second writer then only duplicates rows, which the "latest
recording wins" rule reads once. There is no read lock in S3: compaction deletes
replaced objects only after their grace period (recorder/compact.py).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recorder import s3
from recorder.errors import LockedError, UserError
from recorder.s3 import S3Path

log = logging.getLogger("cprec.lock")

LOCK_FILE = ".lock"
COMPACT_LOCK_FILE = ".compact.lock"
READ_LOCK_FILE = ".read.lock"
# Probes (held_by_someone) hold a shared lock for microseconds: an exclusive taker
# retries this long before it concludes a real holder is there.
PROBE_GRACE_S = 1.0
# An S3 lease lasts this long unless renewed (every third of it). Tests shorten it.
LEASE_TTL_ENV = "CPREC_S3_LEASE_SECONDS"
LEASE_TTL = timedelta(minutes=15)


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
    """Hold `<root>/<name>` (a local directory) exclusively for the block, or raise
    LockedError."""
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


# -- S3 leases ------------------------------------------------------------------------


def _lease_ttl() -> timedelta:
    seconds = os.environ.get(LEASE_TTL_ENV)
    return timedelta(seconds=float(seconds)) if seconds else LEASE_TTL


def _code(e: Exception) -> str:
    return getattr(e, "response", {}).get("Error", {}).get("Code", "")


# Codes S3 answers a conditional write with when the condition fails (409: a
# concurrent conditional write to the same key is in flight).
_CONDITION_FAILED = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


@contextmanager
def lease(obj: S3Path, holder: str) -> Iterator[S3Path]:
    """Hold the lease at `obj` for the block, or raise LockedError."""
    ttl = _lease_ttl()
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    client = s3.client()

    def body() -> bytes:
        expires = datetime.now(UTC) + ttl
        return json.dumps({"owner": owner, "holder": holder,
                           "expires": expires.isoformat(timespec="seconds")}).encode()  # fmt: skip

    def put(**condition) -> str:
        return client.put_object(Bucket=obj.bucket, Key=obj.key, Body=body(), **condition)["ETag"]

    try:
        try:
            etag = put(IfNoneMatch="*")
        except client.exceptions.ClientError as e:
            if _code(e) not in _CONDITION_FAILED:
                raise
            etag = _take_lapsed(obj, holder, put)
    except client.exceptions.ClientError as e:
        raise UserError(f"cannot use data root {obj.parent}: {s3.describe(e)}") from None
    stop = threading.Event()
    state = {"etag": etag}

    def renew() -> None:
        while not stop.wait(ttl.total_seconds() / 3):
            try:
                state["etag"] = put(IfMatch=state["etag"])
            except Exception as e:  # noqa: BLE001 - a lost lease is logged, never fatal
                log.warning("lost the lease %s (%s): another %s may be writing",
                            obj, s3.describe(e), holder)  # fmt: skip
                return

    thread = threading.Thread(target=renew, name="cprec-lease", daemon=True)
    thread.start()
    try:
        yield obj
    finally:
        stop.set()
        thread.join()
        try:  # only our own version: a lease taken over meanwhile is not ours to end
            client.delete_object(Bucket=obj.bucket, Key=obj.key, IfMatch=state["etag"])
        except client.exceptions.ClientError as e:
            log.warning("could not release %s (%s)", obj, s3.describe(e))


def _take_lapsed(obj: S3Path, holder: str, put) -> str:
    """Take over the lease at `obj` if it lapsed, else raise LockedError."""
    client = s3.client()
    try:
        current = client.get_object(Bucket=obj.bucket, Key=obj.key)
        etag, text = current["ETag"], current["Body"].read()
    except client.exceptions.NoSuchKey:  # released meanwhile: try once more from scratch
        return put(IfNoneMatch="*")
    try:
        held = json.loads(text)
        expires = datetime.fromisoformat(held["expires"])
        who = held.get("owner", "?")
    except (ValueError, KeyError, TypeError):  # not ours: do not take it over
        raise UserError(f"{obj} exists and is not a cprec lease; remove it if stale") from None
    if expires > datetime.now(UTC):
        raise LockedError(f"another {holder} ({who}) holds {obj} until {held['expires']}; exiting")
    try:
        return put(IfMatch=etag)
    except client.exceptions.ClientError as e:
        if _code(e) not in _CONDITION_FAILED:
            raise
        raise LockedError(f"another {holder} took over the lapsed {obj}; exiting") from None
