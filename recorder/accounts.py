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
from collections.abc import Iterator
from contextlib import contextmanager
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
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.parsers import ResponseParserError

from recorder import fetch
from recorder.client import CallStats, describe, make_client
from recorder.errors import UserError

SESSION_NAME = "cprec"  # the RoleSessionName: CloudTrail shows assumed-role/<role>/cprec
# arn:<partition>:iam::<12-digit account>:role/<optional/path/><name>, as IAM spells them.
ROLE_ARN = re.compile(
    r"arn:aws(?:-[a-z]+)*:iam::(?P<account>\d{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}"
)


@dataclass(frozen=True)
class Account:
    """An account of the run: its id, the role assumed into it (None: the caller's own),
    each region's Session and call counts; `error` when the role could not be assumed."""

    account_id: str
    role_arn: str | None
    sessions: dict[str, boto3.Session]
    stats: dict[str, CallStats]
    error: str | None = None


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


def identify_accounts(
    regions: list[str],
    profile: str | None,
    endpoint_url: str | None,
    roles: list[Role],
    external_id: str | None,
) -> list[Account]:
    """The accounts to collect, each identified (GetCallerIdentity with its credentials).

    One Session per account and region, shared by that region's clients and threads;
    an account's GetCallerIdentity (and AssumeRole) is counted with its first region's
    traffic. With roles, the caller's own identity is asked first and counted nowhere
    (it is no account's): bad credentials or endpoint are a configuration error, exit
    2, not a failure of every account.
    """
    sessions = {r: session_for(profile, r) for r in regions}
    if roles:
        _account_id(sessions[regions[0]], endpoint_url, None)
        return [_assume(role, regions, profile, endpoint_url, external_id) for role in roles]
    stats = {r: CallStats() for r in regions}
    account_id = _account_id(sessions[regions[0]], endpoint_url, stats[regions[0]])
    return [Account(account_id, None, sessions, stats)]


def session_for(profile: str | None, region: str) -> boto3.Session:
    """A Session of `profile` (None: boto3's default chain) in `region`; a profile that
    does not exist is the user's to fix (UserError, exit 2)."""
    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as e:
        raise UserError(str(e)) from None


def _assume(
    role: Role,
    regions: list[str],
    profile: str | None,
    endpoint_url: str | None,
    external_id: str | None,
) -> Account:
    """The role's account, identified with the assumed credentials: the account id is
    the one they act in, asked as for the caller's own; a refusal (AssumeRole denied) is
    the account's failure, with the ARN's account id."""
    stats = {r: CallStats() for r in regions}
    with _configuration_errors(endpoint_url):
        credentials = assumed_credentials(
            session_for(profile, regions[0]),  # its own: renewals may come from any thread
            role,
            external_id=external_id,
            endpoint_url=endpoint_url,
            stats=stats[regions[0]],
        )
        sessions = {r: session_with(credentials, r, profile) for r in regions}
        try:
            account_id = _caller_account(sessions[regions[0]], endpoint_url, stats[regions[0]])
        except ClientError as e:
            error = f"cannot assume {role.arn}: {describe(e)}"
            return Account(role.account_id, role.arn, sessions, stats, error)
    return Account(account_id, role.arn, sessions, stats)


def _account_id(session: boto3.Session, endpoint_url: str | None, stats: CallStats | None) -> str:
    with _configuration_errors(endpoint_url):
        try:
            return _caller_account(session, endpoint_url, stats)
        except ClientError as e:
            raise UserError(f"cannot identify the AWS account: {describe(e)}") from None


def _caller_account(session: boto3.Session, endpoint_url: str | None, stats: CallStats | None):
    # The first call: an endpoint that does not answer is told after 3 attempts,
    # not after the minute 11 would take.
    sts = make_client(
        "sts",
        region=session.region_name,
        session=session,
        endpoint_url=endpoint_url,
        stats=stats,
        max_attempts=2,
    )
    return fetch.account_id(sts)


@contextmanager
def _configuration_errors(endpoint_url: str | None) -> Iterator[None]:
    """What the user must fix (credentials, profile, endpoint) as a UserError (exit 2)."""
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError) as e:
        raise UserError(f"no AWS credentials: {e}") from None
    except (NoRegionError, ProfileNotFound) as e:
        raise UserError(str(e)) from None
    except (ResponseParserError, KeyError, TypeError, ValueError) as e:
        # botocore could not read the answer (an HTML page, a proxy): name the endpoint
        where = endpoint_url or "the AWS endpoint"
        raise UserError(
            f"{where} does not answer as AWS does (STS GetCallerIdentity: {type(e).__name__})"
        ) from None
    except BotoCoreError as e:
        raise UserError(f"cannot reach AWS: {e}") from None
