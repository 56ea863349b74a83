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
