"""STS of the simulated accounts: AssumeRole and GetCallerIdentity (query protocol, XML).

A server holds one or more accounts. AssumeRole issues temporary credentials in the
account its role ARN names; a request signed with them (the access key id in the
`Authorization` header, `Credential=AKID/...`) sees that account, and
GetCallerIdentity answers with it. Any other credentials see the first account, as a
single-account simulator always did. A role ARN naming an account the server does
not hold, or a missing or wrong ExternalId where one is configured, is AccessDenied
(HTTP 403), as AWS answers; signatures are still not checked, and any role name of
a held account can be assumed.

Expiration is wall-clock time (botocore compares it with the local clock to renew
credentials), not the accounts' simulated clock; issued credentials are refused
once expired (ExpiredToken), so a client that does not renew them fails as on AWS.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from recorder.simulator.model import Account
from recorder.simulator.protocol import ApiError

ROLE_NAME = "cprec-reader"  # the member role `cprec simulate --accounts N` prints
SESSION_SECONDS = 3600  # AssumeRole's default DurationSeconds
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def member_account_id(index: int) -> str:
    """The id of the simulator's `index`-th extra account (1, 2, ...): 200000000001, ..."""
    return f"2{index:011d}"


def role_arn(account_id: str, name: str = ROLE_NAME) -> str:
    return f"arn:aws:iam::{account_id}:role/{name}"


@dataclass(frozen=True)
class Caller:
    """Who signed a request: the account it acts in, and the identity STS reports."""

    account: Account
    arn: str
    user_id: str
    expires: float = float("inf")  # wall clock, epoch seconds


class Sts:
    """The accounts of one server by id, and the sessions AssumeRole issued in them."""

    def __init__(
        self,
        accounts: Sequence[Account],
        external_ids: Mapping[str, str] | None = None,
        session_seconds: int = SESSION_SECONDS,
    ):
        self.accounts = {a.account_id: a for a in accounts}
        if len(self.accounts) != len(accounts):
            raise ValueError("the simulated accounts' ids must be unique")
        unknown = set(external_ids or {}) - set(self.accounts)
        if unknown:
            raise ValueError(f"external ids for accounts the simulator does not hold: {unknown}")
        self.external_ids = dict(external_ids or {})
        self.session_seconds = session_seconds
        own = accounts[0]
        self._own = Caller(own, f"arn:aws:iam::{own.account_id}:user/simulator",
                           "AIDASIMULATOREXAMPLE")  # fmt: skip
        self._sessions: dict[str, Caller] = {}
        self._lock = threading.Lock()

    def caller(self, authorization: str | None) -> Caller:
        """Who signed a request with this `Authorization` header; ApiError when the
        credentials AssumeRole issued have expired."""
        found = _CREDENTIAL.search(authorization or "")
        caller = self._sessions.get(found.group(1)) if found else None
        if caller is None:
            return self._own
        if time.time() >= caller.expires:
            raise ApiError(
                "ExpiredTokenException", "The security token included in the request is expired"
            )
        return caller

    def answer(
        self, action: str, form: dict[str, list[str]], authorization: str | None
    ) -> tuple[int, str]:
        """(HTTP status, XML body) for one STS query request."""
        params = {k: v[0] for k, v in form.items() if v}
        try:
            try:
                caller = self.caller(authorization)
            except ApiError as e:  # STS spells it without the suffix
                raise ApiError("ExpiredToken", e.message, 400) from None
            if action == "GetCallerIdentity":
                return 200, _response(
                    "GetCallerIdentity",
                    f"<Arn>{escape(caller.arn)}</Arn><UserId>{escape(caller.user_id)}</UserId>"
                    f"<Account>{caller.account.account_id}</Account>",
                )
            if action == "AssumeRole":
                return 200, self._assume(caller, params)
            raise ApiError("InvalidAction", f"Could not find operation {action}", 400)
        except ApiError as e:
            return e.http_status, _error(e.code, e.message)

    def _assume(self, caller: Caller, params: dict) -> str:
        arn, name = params.get("RoleArn", ""), params.get("RoleSessionName", "")
        if not name or not re.fullmatch(r"[\w+=,.@-]{2,64}", name):
            raise ApiError("ValidationError", f"Invalid RoleSessionName {name!r}", 400)
        parsed = _ROLE_ARN.fullmatch(arn)
        if parsed is None:
            raise ApiError("ValidationError", f"{arn!r} is invalid for RoleArn", 400)
        account_id, role = parsed.groups()
        target = self.accounts.get(account_id)
        wanted = self.external_ids.get(account_id)
        if target is None or (wanted is not None and params.get("ExternalId") != wanted):
            raise ApiError(
                "AccessDenied",
                f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on "
                f"resource: {arn}",
                403,
            )
        seconds = int(params.get("DurationSeconds") or self.session_seconds)
        with self._lock:
            n = len(self._sessions) + 1
            key = f"ASIASIM{n:013d}"
            session = Caller(
                account=target,
                arn=f"arn:aws:sts::{account_id}:assumed-role/{role}/{name}",
                user_id=f"AROASIM{account_id}:{name}",
                expires=time.time() + seconds,
            )
            self._sessions[key] = session
        expiration = datetime.fromtimestamp(session.expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return _response(
            "AssumeRole",
            "<Credentials>"
            f"<AccessKeyId>{key}</AccessKeyId>"
            f"<SecretAccessKey>simulated-secret-{n}</SecretAccessKey>"
            f"<SessionToken>simulated-session-token-{n}</SessionToken>"
            f"<Expiration>{expiration}</Expiration>"
            "</Credentials>"
            f"<AssumedRoleUser><Arn>{escape(session.arn)}</Arn>"
            f"<AssumedRoleId>{escape(session.user_id)}</AssumedRoleId></AssumedRoleUser>",
        )


def _response(action: str, result: str) -> str:
    return (
        f'<{action}Response xmlns="{_NS}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        f"</{action}Response>\n"
    )


def _error(code: str, message: str) -> str:
    return (
        f'<ErrorResponse xmlns="{_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>\n"
    )
