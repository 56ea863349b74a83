"""The JSON state files a command keeps in the data root between runs (`.watch.json`,
`.otel-export.json`): read whole, checked, and replaced whole (a rename, or one S3 PUT,
as `.head.json`), so a reader sees the old file or the new one, never a mix. Writers
hold the file's own lock (recorder/root.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from recorder import s3
from recorder.errors import UserError
from recorder.root import DataRoot


def read(root: DataRoot, name: str, *, empty: dict, check: Callable[[dict], None], what: str):
    """The state in `root / name`, or `empty` when there is none. `check` raises
    ValueError, KeyError, TypeError or AttributeError for a state that is not cprec's
    (`what` names the file in that one-line error)."""
    p = root / name
    try:
        text = p.read_bytes()
    except FileNotFoundError:
        return empty
    except OSError as e:
        raise UserError(f"cannot read {p}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - botocore's errors, imported only for S3
        if s3.describe(e).startswith("NoSuchKey"):
            return empty
        raise UserError(f"cannot read {p}: {s3.describe(e)}") from None
    try:
        state = json.loads(text)
        check(state)
        return state
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserError(f"{p} is not a cprec {what}; move it away and run again") from None


def write(root: DataRoot, name: str, state: dict) -> None:
    """Replace `root / name` whole with `state`."""
    p = root / name
    data = (json.dumps(state, indent=1, sort_keys=True) + "\n").encode()
    try:
        root.publish_bytes(p, data, p.with_name(f"{name}.{os.getpid()}.tmp"))
    except OSError as e:
        raise UserError(f"cannot write {p}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - botocore's errors, imported only for S3
        raise UserError(f"cannot write {p}: {s3.describe(e)}") from None
