"""S3 as a data root: `s3://bucket/prefix` holds the same layout and files as a local root.

A path under an S3 root is an `S3Path`: a PurePosixPath of `bucket/key` that prints as
`s3://bucket/key` and implements the few methods of pathlib.Path that cprec's storage
code calls (exists, is_dir, iterdir, unlink, read/write), over boto3. So layout, store,
compaction and the cache handle both kinds of root with the same code, and only
listing, locking and publishing a file differ: recorder/root.py's S3Root (over the
functions here and recorder/lock.py's lease).

- Clients come from the standard AWS configuration as boto3 reads it: credentials,
  profile (`AWS_PROFILE`), region, and the S3 endpoint (`AWS_ENDPOINT_URL_S3`, or
  `AWS_ENDPOINT_URL`), so a test server or an S3-compatible store is one variable away.
  cprec's `--endpoint-url` stays the CodePipeline (and STS) endpoint.
- An object is published by one PUT, which S3 applies whole or not at all: no
  temporary object, no rename, and a crash mid-upload leaves nothing readers see.
- DuckDB reads `s3://` through pyarrow's S3 filesystem, wrapped as an fsspec
  filesystem and registered on the connection (`attach`). DuckDB's own httpfs
  extension would be downloaded from the internet at run time; with internet, a
  user can `INSTALL httpfs` and read the same URIs with it (see the README).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from recorder.errors import UserError, first_line

SCHEME = "s3://"
# S3 bucket naming rules (general purpose buckets): 3-63 characters of lowercase
# letters, digits, dots and hyphens, starting and ending with a letter or digit.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class S3Path(PurePosixPath):
    """`bucket/key` of an S3 object or prefix, printed as `s3://bucket/key`."""

    def __str__(self) -> str:
        return SCHEME + super().__str__()

    def __repr__(self) -> str:
        return f"S3Path({str(self)!r})"

    def __fspath__(self) -> str:  # never a local path: os.* calls on it fail loudly
        raise TypeError(f"{self} is an S3 object, not a local file")

    def relative_to(self, *other) -> PurePosixPath:
        """A relative path is no S3 location: a plain PurePosixPath (`a/b`, not `s3://a/b`)."""
        plain = [PurePosixPath(*o.parts) if isinstance(o, PurePosixPath) else o for o in other]
        return PurePosixPath(*self.parts).relative_to(*plain)

    @property
    def bucket(self) -> str:
        return self.parts[0]

    @property
    def key(self) -> str:
        return "/".join(self.parts[1:])

    # -- the subset of pathlib.Path cprec's storage code uses --------------------

    def resolve(self) -> S3Path:
        return self

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """S3 has no directories: a prefix exists once an object is under it."""

    def exists(self) -> bool:
        return self.is_file() or self.is_dir()

    def is_file(self) -> bool:
        try:
            client().head_object(Bucket=self.bucket, Key=self.key)
            return True
        except client().exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def is_dir(self) -> bool:
        prefix = self.key + "/" if self.key else ""
        page = client().list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        return page.get("KeyCount", 0) > 0

    def iterdir(self) -> Iterator[S3Path]:
        prefix = self.key + "/" if self.key else ""
        pages = (
            client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/")
        )
        for page in pages:
            for p in page.get("CommonPrefixes", []):
                yield S3Path(self.bucket, p["Prefix"].rstrip("/"))
            for o in page.get("Contents", []):
                yield S3Path(self.bucket, o["Key"])

    def unlink(self, missing_ok: bool = False) -> None:
        client().delete_object(Bucket=self.bucket, Key=self.key)  # idempotent in S3

    def read_bytes(self) -> bytes:
        return client().get_object(Bucket=self.bucket, Key=self.key)["Body"].read()

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.read_bytes().decode(encoding, errors)

    def write_bytes(self, data: bytes) -> None:
        client().put_object(Bucket=self.bucket, Key=self.key, Body=data)


def parse(uri: str) -> S3Path:
    """`s3://bucket[/prefix]` as an S3Path, or one line saying what is wrong with it."""
    parts = urlsplit(uri)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if parts.scheme != "s3" or not _BUCKET.match(bucket) or parts.query or parts.fragment:
        raise UserError(f"{uri} is not an S3 location (s3://bucket or s3://bucket/prefix)")
    if "//" in parts.path:
        raise UserError(f"{uri}: an empty folder name (//) in the prefix")
    return S3Path(bucket, prefix) if prefix else S3Path(bucket)


def list_files(base: S3Path, suffix: str = "") -> list[S3Path]:
    """Every object under `base/` whose key ends with `suffix`: one paged listing."""
    prefix = base.key + "/" if base.key else ""
    pages = client().get_paginator("list_objects_v2").paginate(Bucket=base.bucket, Prefix=prefix)
    return [
        S3Path(base.bucket, o["Key"])
        for page in pages
        for o in page.get("Contents", [])
        if o["Key"].endswith(suffix)
    ]


# -- clients ----------------------------------------------------------------------------


@functools.cache
def _session():
    import boto3

    return boto3.Session()


@functools.cache
def client():
    """The process's S3 client, from the standard AWS configuration (thread-safe)."""
    from botocore.config import Config

    return _session().client(
        "s3", config=Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10)
    )


@functools.cache
def filesystem():
    """A pyarrow S3 filesystem configured like `client()`: same credentials and endpoint."""
    import pyarrow.fs as pafs

    s3 = client()
    creds = _session().get_credentials()
    if creds is None:
        raise UserError("no AWS credentials for S3 (configure them as for the AWS CLI)")
    frozen = creds.get_frozen_credentials()
    endpoint = urlsplit(s3.meta.endpoint_url)
    options = {
        "access_key": frozen.access_key,
        "secret_key": frozen.secret_key,
        "session_token": frozen.token,
        "region": s3.meta.region_name or "us-east-1",
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=5),
    }
    if not endpoint.netloc.endswith(".amazonaws.com"):  # an endpoint the user configured
        options.update(endpoint_override=endpoint.netloc, scheme=endpoint.scheme)
    return pafs.S3FileSystem(**options)


def attach(con) -> None:
    """Let DuckDB connection `con` read `s3://` URIs through `filesystem()`."""
    from fsspec.implementations.arrow import ArrowFSWrapper

    class _S3(ArrowFSWrapper):
        protocol = ("s3",)

    con.register_filesystem(_S3(filesystem()))


def describe(e: Exception) -> str:
    """One line for an S3 error: the service's code and message when it sent them."""
    response = getattr(e, "response", None)
    if isinstance(response, dict) and response.get("Error"):
        err = response["Error"]
        return f"{err.get('Code', '')}: {err.get('Message', '')}".strip(": ")
    return first_line(e)
