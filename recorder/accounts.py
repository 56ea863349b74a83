"""Many accounts in one run: IAM role ARNs, and sessions acting through STS AssumeRole.

`cprec collect --role-arn ARN` (repeatable) records each role's account with
credentials the run's own (`--profile` or boto3's default chain) obtain from STS
AssumeRole, through the same `--endpoint-url` as every other call.

The assumed credentials renew themselves, with botocore's own machinery, the one a
profile's `role_arn` uses: an `AssumeRoleCredentialFetcher` calls AssumeRole (and
keeps the answer until 15 minutes before it expires) and
`DeferredRefreshableCredentials` asks it on first use and again before expiry, under
its own lock, so the worker threads of a run longer than the credentials' hour keep
signing with valid ones. One credentials object serves every region of an account;
each region gets its own Session (sessions are not thread-safe, credentials are).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.session
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import NoCredentialsError

from recorder.client import CallStats, make_client
from recorder.errors import UserError

SESSION_NAME = "cprec"  # the RoleSessionName: CloudTrail shows assumed-role/<role>/cprec
# arn:<partition>:iam::<12-digit account>:role/<optional/path/><name>, as IAM spells them.
ROLE_ARN = re.compile(
    r"arn:aws(?:-[a-z]+)*:iam::(?P<account>\d{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}"
)


@dataclass(frozen=True)
class Role:
    arn: str
    account_id: str  # from the ARN: names the account in lines before it is assumed


def parse_roles(arns: list[str] | tuple[str, ...]) -> list[Role]:
    """The roles to assume, each once, in the order given; UserError for an ARN that is not
    an IAM role's (checked before anything is asked or written)."""
    roles: dict[str, Role] = {}  # by account id
    for arn in dict.fromkeys(arns):
        found = ROLE_ARN.fullmatch(arn)
        if found is None:
            raise UserError(
                f"--role-arn {arn!r} is not an IAM role ARN "
                "(like arn:aws:iam::123456789012:role/cprec-reader)"
            )
        # An account recorded twice in one run would write two run rows under one key.
        twin = roles.get(found["account"])
        if twin is not None:
            raise UserError(f"--role-arn {twin.arn} and {arn} are in the same account: pass one")
        roles[found["account"]] = Role(arn, found["account"])
    return list(roles.values())


def read_role_file(path: Path) -> list[str]:
    """Role ARNs, one a line; blank lines and `#` comments are skipped."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"--role-arn-file {path}: {getattr(e, 'strerror', None) or e}") from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def assumed_credentials(
    source: boto3.Session,
    role: Role,
    *,
    external_id: str | None,
    endpoint_url: str | None,
    stats: CallStats,
) -> DeferredRefreshableCredentials:
    """Credentials of `role`, obtained with `source`'s on first use and renewed before they
    expire; AssumeRole calls are counted into `stats`. `source` is this account's alone:
    renewals may come from any worker thread (one at a time, under botocore's lock)."""
    credentials = source.get_credentials()
    if credentials is None:
        raise NoCredentialsError()

    def sts_client(service: str, **keys):  # what the fetcher asks for: keys of the source
        return make_client(service, region=source.region_name, session=source,
                           endpoint_url=endpoint_url, stats=stats, credentials=keys)  # fmt: skip

    extra = {"RoleSessionName": SESSION_NAME}
    if external_id:
        extra["ExternalId"] = external_id
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=sts_client,
        source_credentials=credentials,
        role_arn=role.arn,
        extra_args=extra,
    )
    return DeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials,
                                          method=_Given.METHOD)  # fmt: skip


def session_with(credentials, region: str, profile: str | None) -> boto3.Session:
    """A Session for `region` (and `profile`'s other settings) whose clients sign with
    `credentials` (shared, not copied)."""
    core = botocore.session.Session(profile=profile)
    core.register_component("credential_provider", CredentialResolver([_Given(credentials)]))
    return boto3.Session(botocore_session=core, region_name=region)


class _Given(CredentialProvider):
    """Hands botocore credentials made elsewhere (the public way to give a Session them)."""

    METHOD = "assume-role"
    CANONICAL_NAME = "custom-cprec-assume-role"

    def __init__(self, credentials):
        super().__init__()
        self._credentials = credentials

    def load(self):
        return self._credentials
