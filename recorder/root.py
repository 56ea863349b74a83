"""The data root: a local directory or an S3 prefix, and everything that differs between
the two kinds, in one object.

Why: the storage code (layout, store, compaction, the cache, the readers) is the same
for both kinds of root, except for a few operations: listing files (S3 has no
directories), publishing a file whole (a rename, or one PUT), locks (an flock, or an S3
lease), letting DuckDB read the files, and where the query cache lives. Deciding the
kind once, where a root enters cprec (the CLI's `--data`, a library entry point), and
passing the `DataRoot` down keeps those decisions here instead of in every module, and
keeps the cache directory chosen with `--cache-dir` with the root it belongs to (no
process-wide registry).

`DataRoot.of(value)` makes one from a CLI value (`s3://bucket/prefix` or a directory),
a path or a DataRoot (returned as is): library entry points accept any of these and
convert once. The cache directory defaults to `<root>/.cache` for a directory and, for
an S3 root, a directory of this machine's user cache, one per root.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, ClassVar

import pyarrow.parquet as pq

from recorder import lock, s3
from recorder.errors import UserError
from recorder.s3 import S3Path

CACHE_DIR = ".cache"


@dataclass(frozen=True)
class DataRoot:
    """A data root (`path`) and the local directory of its query cache (`cache_dir`).

    Paths under the root are of the root's kind: pathlib.Path, or S3Path for S3.
    """

    path: Path | S3Path
    cache_dir: Path = None  # type: ignore[assignment]  # None: the default (__post_init__)

    is_s3: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if type(self) is DataRoot:
            raise TypeError("use DataRoot.of(...): it chooses the kind of root")
        if self.cache_dir is None:
            object.__setattr__(self, "cache_dir", self._default_cache_dir())
        else:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir).absolute())

    @staticmethod
    def of(value: str | Path | S3Path | DataRoot, *, cache_dir: Path | None = None) -> DataRoot:
        """The data root `value` names; `cache_dir`: its cache elsewhere (`--cache-dir`).
        A DataRoot is returned as is (with `cache_dir`, a copy that keeps its cache there)."""
        if isinstance(value, DataRoot):
            return value if cache_dir is None else dataclasses.replace(value, cache_dir=cache_dir)
        if isinstance(value, S3Path):
            return S3Root(value, cache_dir)
        if isinstance(value, str) and value.startswith(s3.SCHEME):
            return S3Root(s3.parse(value), cache_dir)
        return LocalRoot(Path(value), cache_dir)

    def __str__(self) -> str:
        return str(self.path)

    def __truediv__(self, part: str) -> Path | S3Path:
        return self.path / part

    def resolve(self) -> DataRoot:
        """The same root (and cache directory) by its absolute path."""
        return dataclasses.replace(self, path=self.path.resolve(), cache_dir=self.cache_dir)

    def existing(self) -> DataRoot:
        """This root, if it holds something; else one line saying it does not."""
        try:
            found = self.path.is_dir()
        except Exception as e:  # noqa: BLE001 - S3: a missing bucket, no credentials, no endpoint
            raise UserError(f"cannot read data root {self}: {s3.describe(e)}") from None
        if not found:
            raise UserError(
                f"data root {self} {self._missing} (run `cprec collect` or `cprec demo`, "
                "or pass --data / CPREC_DATA)"
            )
        return self

    # -- what differs by kind ----------------------------------------------------------

    _missing: ClassVar[str]

    def _default_cache_dir(self) -> Path:
        raise NotImplementedError

    def file(self, name: str | Path | S3Path) -> Path | S3Path:
        """A file under this root, from its name as DuckDB and the cache spell it."""
        raise NotImplementedError

    def attach(self, con) -> None:
        """Let DuckDB connection `con` read this root's files."""

    def walk(self, base: Path | S3Path, depth: int, suffix: str) -> Iterator[Path | S3Path]:
        """Every file exactly `depth` levels under `base` whose name ends with `suffix`,
        every folder on the way named `key=value` (a partition)."""
        raise NotImplementedError

    def folders(self, base: Path | S3Path, pattern: str, suffix: str) -> list[Path | S3Path]:
        """The partition folders under `base` matching `pattern` (a glob, a part per
        level), sorted; in S3, which has no folders, the prefixes holding a file ending
        with `suffix` (`walk`) at the next level."""
        raise NotImplementedError

    def files_in(self, directory: Path | S3Path, suffix: str) -> list[Path | S3Path]:
        """The files directly in `directory` whose name ends with `suffix`, sorted."""
        raise NotImplementedError

    def parquet_metadata(self, path: Path | S3Path) -> pq.FileMetaData:
        """The Parquet footer of a file under this root."""
        return pq.read_metadata(path)

    def publish(
        self,
        dest: Path | S3Path,
        write: Callable[[Path | BinaryIO], None],
        tmp: Path,
        ready: Callable[[], None] | None = None,
    ) -> None:
        """Make `dest` hold what `write` writes, whole or not at all for readers. `write`
        is given where to write: the temporary file `tmp` of a directory root (outside
        every table tree), renamed over `dest` once written, or for S3 a file object in
        memory; `ready`: called once it is written, before it is published."""
        raise NotImplementedError

    def publish_bytes(self, dest: Path | S3Path, data: bytes, tmp: Path) -> None:
        """`publish` of `data`."""
        raise NotImplementedError

    def clean_tmp(self, tmp_name: str) -> int:
        """Remove the temporary files a crashed writer left in `<root>/<tmp_name>`; call
        only under that writer's lock. Returns how many."""
        raise NotImplementedError

    def lock(
        self, name: str = lock.LOCK_FILE, holder: str = "collector"
    ) -> AbstractContextManager[Path | S3Path]:
        """Hold `<root>/<name>` exclusively for the block, or raise LockedError."""
        raise NotImplementedError

    def cache_lock(self) -> AbstractContextManager:
        """The lock a whole-tree build of the cache (`cprec cache`) holds."""
        raise NotImplementedError

    def read_lock(self, owner: object) -> None:
        """Hold the root's read lock for as long as `owner` (a connection) lives, so
        compaction deletes no file it listed."""

    def no_readers(self, patience: float) -> AbstractContextManager[bool]:
        """Yield True while no process reads the Parquet files (False if readers stayed)."""
        raise NotImplementedError


@dataclass(frozen=True)
class LocalRoot(DataRoot):
    """A directory: flocks (recorder/lock.py), renames, a directory walk."""

    _missing: ClassVar[str] = "is not a directory"

    def _default_cache_dir(self) -> Path:
        return self.path / CACHE_DIR

    def file(self, name: str | Path | S3Path) -> Path:
        return Path(name)

    def walk(self, base: Path, depth: int, suffix: str) -> Iterator[Path]:
        """A directory walk (no glob: O(files), no sorting)."""
        if base.is_dir():
            yield from _walk(base, depth, suffix)

    def folders(self, base: Path, pattern: str, suffix: str) -> list[Path]:
        if not base.is_dir():
            return []
        return sorted(d for d in base.glob(pattern) if d.is_dir())

    def files_in(self, directory: Path, suffix: str) -> list[Path]:
        if not directory.is_dir():
            return []
        return sorted(p for p in directory.iterdir() if p.name.endswith(suffix) and p.is_file())

    def publish(self, dest, write, tmp, ready=None) -> None:
        """Written to `tmp`, fsynced, then renamed to `dest`."""
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            write(tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            if ready is not None:
                ready()
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def publish_bytes(self, dest, data, tmp) -> None:
        self.publish(dest, lambda where: where.write_bytes(data), tmp)

    def clean_tmp(self, tmp_name: str) -> int:
        tmp_dir = self.path / tmp_name
        if not tmp_dir.is_dir():
            return 0
        n = 0
        for p in tmp_dir.iterdir():
            p.unlink(missing_ok=True)
            n += 1
        return n

    def lock(self, name: str = lock.LOCK_FILE, holder: str = "collector"):
        return lock.data_lock(self.path, name, holder)

    def cache_lock(self):
        """The collector's lock: a collector refreshes the cache itself when it ends, so a
        build never runs beside one."""
        return self.lock()

    def read_lock(self, owner: object) -> None:
        lock.read_lock(self.path, owner)

    def no_readers(self, patience: float):
        return lock.no_readers(self.path, patience)


@dataclass(frozen=True)
class S3Root(DataRoot):
    """An S3 prefix (recorder/s3.py): one paged listing, whole-object PUTs, leases, no
    read lock; its cache is on this machine, as its collectors often run elsewhere."""

    is_s3: ClassVar[bool] = True
    _missing: ClassVar[str] = "holds no data"

    def _default_cache_dir(self) -> Path:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        digest = hashlib.sha256(str(self.path).encode()).hexdigest()[:12]
        return base / "cprec" / f"{self.path.bucket}-{digest}"

    def file(self, name: str | Path | S3Path) -> S3Path:
        return name if isinstance(name, S3Path) else s3.parse(str(name))

    def attach(self, con) -> None:
        """Through pyarrow's S3 filesystem (s3.attach), not DuckDB's httpfs extension,
        which would be downloaded at run time."""
        s3.attach(con)

    def walk(self, base: S3Path, depth: int, suffix: str) -> Iterator[S3Path]:
        """One paged listing of `base`'s prefix."""
        for p in s3.list_files(base, suffix):
            rel = p.relative_to(base).parts
            if len(rel) == depth and all("=" in part for part in rel[:-1]):
                yield p

    def folders(self, base: S3Path, pattern: str, suffix: str) -> list[S3Path]:
        depth = len(pattern.split("/")) + 1
        return sorted({f.parent for f in self.walk(base, depth, suffix)})

    def files_in(self, directory: S3Path, suffix: str) -> list[S3Path]:
        return sorted(p for p in s3.list_files(directory, suffix) if p.parent == directory)

    def parquet_metadata(self, path: S3Path) -> pq.FileMetaData:
        return pq.read_metadata(str(path).removeprefix(s3.SCHEME), filesystem=s3.filesystem())

    def publish(self, dest, write, tmp, ready=None) -> None:
        """Serialised in memory and PUT whole: S3 publishes an object whole or not at all
        (no temporary object)."""
        buffer = io.BytesIO()
        write(buffer)
        if ready is not None:
            ready()
        dest.write_bytes(buffer.getvalue())

    def publish_bytes(self, dest, data, tmp) -> None:
        dest.write_bytes(data)  # one PUT

    def clean_tmp(self, tmp_name: str) -> int:
        return 0  # nothing is written to S3 but whole objects

    def lock(self, name: str = lock.LOCK_FILE, holder: str = "collector"):
        return lock.lease(self.path / name, holder)

    def cache_lock(self):
        """The local cache directory's: the root's collectors run elsewhere and never write
        this machine's cache, so only its readers (`sync`) and builders contend."""
        return lock.data_lock(self.cache_dir, holder="cache build")

    def read_lock(self, owner: object) -> None:
        """None: compaction's grace period protects S3 readers (recorder/compact.py)."""

    @contextmanager
    def no_readers(self, patience: float) -> Iterator[bool]:
        """Readers cannot be seen: True (the grace period has passed for every file)."""
        yield True


def _walk(directory: Path, depth: int, suffix: str) -> Iterator[Path]:
    with os.scandir(directory) as it:
        for entry in it:
            if depth == 1:
                if entry.name.endswith(suffix) and entry.is_file():
                    yield Path(entry.path)
            elif entry.is_dir() and "=" in entry.name:
                yield from _walk(Path(entry.path), depth - 1, suffix)
