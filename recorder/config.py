"""What a collection is configured with, and the setup `cprec collect` and its --plan share.

`CollectConfig` is the whole selection of a run (regions, accounts, pipelines, the
backfill bound) and how it runs (workers, the time limit, the cache, the clock, the
log): one object, so that `cprec collect --plan` estimates exactly the run the same
flags make, and a caller (the demo, the benchmarks, the tests) states a run the way
the command line does. `CollectConfig.scope()` checks it before anything is asked of
AWS or written; `Scope.accounts()` then identifies the accounts (the first AWS calls).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from botocore.exceptions import ProfileNotFound

from recorder.accounts import Account, Role, identify_accounts, parse_roles
from recorder.client import default_region
from recorder.errors import UserError
from recorder.known import RETENTION
from recorder.timeparse import utcnow

# AWS region names: lower case, e.g. us-east-1, us-gov-west-1, eusc-de-east-1.
REGION = re.compile(r"[a-z]{2,}(-[a-z]+)+-[0-9]+")
_SEQUENCES = ("regions", "role_arns", "include", "exclude")


@dataclass(frozen=True)
class CollectConfig:
    """A collection run's configuration, as `cprec collect`'s flags give it.

    Sequences may be given as lists; they are held as tuples, so a configuration can be
    shared (the plan and the run, a benchmark's repeated runs) and never changes under
    its user. `--plan` reads the selection and `workers`; `max_duration`, `build_cache`
    and `log_format` are the run's alone.
    """

    regions: tuple[str, ...] = ()  # none: the profile's or the environment's region
    profile: str | None = None
    endpoint_url: str | None = None  # for the CodePipeline and STS calls (the simulator)
    role_arns: tuple[str, ...] = ()  # accounts to record; none: the credentials' own
    external_id: str | None = None  # passed with every AssumeRole
    include: tuple[str, ...] = ()  # pipeline name globs; none: every pipeline
    exclude: tuple[str, ...] = ()
    since: datetime | None = None  # backfill lower bound; None: RETENTION before the clock
    now: datetime | None = None  # a fixed clock (the simulator's), or None for the wall clock
    workers: int = 8  # pipelines collected in parallel
    # Seconds after which no new execution is fetched: what was fetched is published
    # whole, the pipelines left unfinished are the next run's (exit 0).
    max_duration: float | None = None
    build_cache: bool = False  # build a local root's query cache if it has none
    quiet: bool = True  # errors only, and no progress bar
    log_format: str = "text"  # or "json": one object a line

    def __post_init__(self) -> None:
        for name in _SEQUENCES:
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def scope(self) -> Scope:
        """The configuration checked and resolved, before anything is asked of AWS or
        written: regions, role ARNs, the window, the endpoint's form, in that order (a
        UserError, exit 2, for the first that is wrong)."""
        regions = _regions(self.regions, self.profile)
        roles = parse_roles(self.role_arns)
        now = self.now.astimezone(UTC) if self.now else None
        clock = now or utcnow()
        since = (self.since or clock - RETENTION).astimezone(UTC)
        if since > clock:
            # No execution starts after the clock: the run would record none, and say nothing.
            raise UserError(
                f"--since {since.isoformat()} is after now "
                f"({clock.isoformat(timespec='seconds')}): no execution would be recorded"
            )
        _check_endpoint(self.endpoint_url)
        return Scope(self, tuple(regions), tuple(roles), now, clock, since)


@dataclass(frozen=True)
class Scope:
    """What a checked configuration covers: the regions (in order, each once), the roles,
    and the window's clock and lower bound, all in UTC."""

    config: CollectConfig
    regions: tuple[str, ...]
    roles: tuple[Role, ...]
    now: datetime | None  # the configuration's fixed clock, or None for the wall clock
    clock: datetime  # `now`, or the wall clock when the configuration was checked
    since: datetime

    def accounts(self) -> list[Account]:
        """The accounts to collect, identified: the run's first AWS calls (GetCallerIdentity,
        AssumeRole per role). Credentials, profile or endpoint wrong: UserError (exit 2);
        a role refused: that account's `error`, the others go on."""
        c = self.config
        return identify_accounts(
            list(self.regions), c.profile, c.endpoint_url, list(self.roles), c.external_id
        )


def _check_endpoint(url: str | None) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"--endpoint-url {url!r} is not a URL like https://host:port")


def _regions(regions: tuple[str, ...], profile: str | None) -> list[str]:
    try:
        chosen = list(dict.fromkeys(regions)) or [default_region(profile)]
    except ProfileNotFound as e:
        raise UserError(str(e)) from None
    if not chosen or chosen[0] is None:
        raise UserError("no region: pass --region or set AWS_REGION or a profile region")
    for region in chosen:
        # Stored in every row and part of every key: a second spelling of one region
        # would record its whole history again under another name.
        if not REGION.fullmatch(region):
            raise UserError(f"{region!r} is not an AWS region name (like us-east-1)")
    return chosen
