"""The data root's head: which root this is, and whether its last collector run ended.

Why: the collector decides what it need not fetch again from what the root holds. It
may read that from the query cache instead of every file (at a year of 500 pipelines
the files take minutes to read), but only from a cache that has *proven* it reflects
this very root as it is now. A cache of another root (`--cache-dir`, a copied or
restored cache), of an earlier life of the same bucket (recreated, restored from a
backup) or one that is behind would otherwise make the collector skip executions the
root does not hold, and AWS deletes them after 12 months: history lost for good.

`<root>/.head.json` holds:
- `root_id`: a random id written once, when the first collector of this version finds
  no head (a new root, a recreated bucket, or a root of an older cprec);
- `run_id`: the last collector run that began writing to the root, and `clean`: whether
  it ended (False from before its first file until after its cache refresh);
- `previous`: the run before it, if that one ended (the state readers of a directory
  root's cache may use while a collector writes).

A collector marks the head dirty with its own run id before it writes anything, and
clean after its last write; a cache records in its refresh transaction the head it
reflects (`token`). The proof is equality: the head the collector finds is clean and
its token is the cache's. A crash, a concurrent writer elsewhere, another root, a new
bucket or an old cache all break it, and the collector then reads the root's files.
The run id is unique, so two copies of a root that both moved on never share a token.
Readers of a directory root ask the same of its cache (`reflected_by`): a cache restored
from a backup or given with another root's `--cache-dir` is not read; an S3 root's
readers bring their cache level with a listing of the objects before each use instead.

Written under the collector's lock (an flock, or the S3 lease) only; replaced whole
(an atomic rename, or one S3 PUT).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from recorder import s3
from recorder.errors import UserError
from recorder.root import DataRoot

HEAD_FILE = ".head.json"


@dataclass(frozen=True)
class Head:
    root_id: str
    run_id: str | None
    clean: bool
    previous: str | None = None  # the run before `run_id`, when that one had ended

    @property
    def token(self) -> str:
        """What a cache records as the state it reflects."""
        return f"{self.root_id}/{self.run_id}"

    def reflected_by(self, token: str | None) -> bool:
        """Whether a cache recording `token` holds a whole state of this root: this head,
        or, while a collector writes (dirty), the state the run before it left."""
        if token is None:
            return False
        if token == self.token:
            return True
        return (
            not self.clean
            and self.previous is not None
            and (token == f"{self.root_id}/{self.previous}")
        )


def path(root: str | Path | DataRoot) -> Path:
    return DataRoot.of(root) / HEAD_FILE


def read(root: str | Path | DataRoot) -> Head | None:
    """The root's head, None when it has none; one line when the file is not one."""
    p = path(root)
    try:
        text = p.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise UserError(f"cannot read {p}: {e.strerror or e}") from None
    except Exception as e:  # an S3 error: botocore is imported only for S3 roots
        if s3.describe(e).startswith("NoSuchKey"):
            return None
        raise UserError(f"cannot read {p}: {s3.describe(e)}") from None
    try:
        held = json.loads(text)
        return Head(
            str(held["root_id"]), held.get("run_id"), bool(held["clean"]), held.get("previous")
        )
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{p} is not a cprec head file; move it away and run again") from None


def write(root: str | Path | DataRoot, head: Head) -> None:
    root = DataRoot.of(root)
    p = path(root)
    data = json.dumps({"root_id": head.root_id, "run_id": head.run_id, "clean": head.clean,
                       "previous": head.previous})  # fmt: skip
    data = (data + "\n").encode()
    try:  # renamed over the head, or one PUT: readers see the old head or the new one
        root.publish_bytes(p, data, p.with_name(f"{HEAD_FILE}.{uuid.uuid4().hex[:8]}.tmp"))
    except OSError as e:  # a full disk, a read-only root: nothing was written
        raise UserError(f"cannot write {p}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - botocore's errors, imported only for S3
        raise UserError(f"cannot write {p}: {s3.describe(e)}") from None


def proven(root: str | Path | DataRoot) -> str | None:
    """The token a whole-tree refresh that lists the root now may record: the head's,
    read before the listing, when its last run ended (None: nothing can be proven)."""
    found = read(root)
    return found.token if found and found.clean else None


def begin(root: str | Path | DataRoot, run_id: str) -> tuple[Head | None, Head]:
    """Mark the root as being written by `run_id` (call under the collector's lock, before
    the first write); returns the head found (None when the root had none) and the head
    the root will have when the run ends."""
    before = read(root)
    root_id = before.root_id if before else uuid.uuid4().hex
    previous = before.run_id if before and before.clean else None
    write(root, Head(root_id, run_id, clean=False, previous=previous))
    return before, Head(root_id, run_id, clean=True)


def end(root: str | Path | DataRoot, run_id: str) -> Head:
    """Mark the root's last run `run_id` as ended (after its last write)."""
    current = read(root)
    if current is None or current.run_id != run_id:  # our head was replaced: not ours to end
        raise UserError(f"{path(root)} was changed by another writer during this run")
    done = Head(current.root_id, run_id, clean=True)
    write(root, done)
    return done
