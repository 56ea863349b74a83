"""Time-window bounds: an ISO date/time or a relative `30d` / `12h` / `90m` / `2w`."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from recorder.errors import UserError

_RELATIVE = re.compile(r"^\s*(\d+)\s*([wdhm])\s*$")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_bound(value: str, now: datetime | None = None, *, name: str = "--since") -> datetime:
    """Turn `2026-01-31`, `2026-01-31T12:00:00Z` or `30d` into an aware UTC datetime."""
    now = now or utcnow()
    try:
        return _parse(value, now, name)
    except OverflowError:
        raise UserError(f"{name}: {value!r} is out of the range of dates") from None


def _parse(value: str, now: datetime, name: str) -> datetime:
    m = _RELATIVE.match(value)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{name}: {value!r} is not a date (YYYY-MM-DD), a time (ISO 8601) "
            "or a relative age like 30d, 12h, 90m, 2w"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def window_warnings(since: datetime | None, until: datetime | None, now: datetime) -> list[str]:
    """Why a window is empty before it is run: a bound in the future, or an empty range."""
    warnings = []
    if since is not None and since > now:
        warnings.append(f"--since {since:%Y-%m-%d %H:%M} UTC is in the future: no rows")
    if since is not None and until is not None and until <= since:
        warnings.append("--until is not after --since: no rows")
    return warnings
