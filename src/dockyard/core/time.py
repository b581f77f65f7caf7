"""Timestamps in Nuvla's wire format: ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC, exactly 3 fraction digits)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_INPUT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$")


def format_ts(dt: datetime) -> str:
    dt = dt.astimezone(timezone.utc)
    # not strftime: its %Y drops the leading zeros of years before 1000 (225, not 0225) on glibc
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}."
            f"{dt.microsecond // 1000:03d}Z")


def now() -> datetime:
    return datetime.now(timezone.utc)


def now_ts() -> str:
    return format_ts(now())


def ts_in(seconds: float) -> str:
    return format_ts(now() + timedelta(seconds=seconds))


def parse_ts(text: str) -> datetime:
    """Parse a timestamp as Nuvla accepts it (0-3 fraction digits, ``Z`` or an offset); ValueError if not."""
    if not isinstance(text, str) or not _INPUT.match(text):
        raise ValueError(f"not a timestamp: {text!r}")
    try:  # in UTC, where 9999-12-31T23:59:59-14:00 has no year to be in
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"not a timestamp within years 1-9999 in UTC: {text!r}") from None


def normalise_ts(text: str) -> str:
    return format_ts(parse_ts(text))
