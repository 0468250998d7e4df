"""Time in one place: ISO-8601 in and out (always aware UTC), and one duration parser.

Durations always carry a unit (``90s``, ``15m``, ``4h``, ``1h30m``, ``2d``): a bare number was
hours in one command and seconds in another before, so it is now refused with a message that
names the units.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([dhms])", re.IGNORECASE)
_UNIT_S = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
DURATION_HELP = "a number with a unit: 45s, 90m, 4h, 1h30m, 2d"


def parse_duration_s(text: str) -> float:
    """Seconds in ``text`` (``4h``, ``90m``, ``1h30m``, ``2.5h``, ``45s``, ``1d``).

    Raises ``ValueError`` naming the accepted forms for a bare number or anything else.
    """
    t = str(text).strip()
    parts = _DURATION_PART.findall(t)
    if not parts or _DURATION_PART.sub("", t).strip():
        hint = " (a bare number has no unit)" if _is_number(t) else ""
        raise ValueError(f"bad duration {text!r}{hint}: use {DURATION_HELP}")
    return sum(float(n) * _UNIT_S[u.lower()] for n, u in parts)


def duration_arg_s(text: str) -> float:
    """``parse_duration_s`` as an argparse ``type=``: a bad value becomes a usage error."""
    import argparse

    try:
        return parse_duration_s(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_duration(text: str) -> timedelta:
    """``parse_duration_s`` as a ``timedelta``."""
    return timedelta(seconds=parse_duration_s(text))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_iso(text: str) -> datetime:
    """ISO 8601 from any source (``Z``, ``+00:00``, minute precision) -> aware UTC.

    A naive time is taken as UTC: carbonpipe's files and APIs are all UTC.
    """
    t = str(text).strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def utc_iso(ts: datetime) -> str:
    """UTC ISO-8601 with a Z and millisecond precision, the contract's timestamp form."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: carbonpipe timestamps are always UTC-aware")
    return ts.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_iso_s(ts: datetime) -> str:
    """UTC ISO-8601 to the second with a Z (``2023-11-24T03:00:00Z``), for plans and reports."""
    return ts.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def utc_iso_min(ts: datetime) -> str:
    """``2023-11-24T03:00Z``: compact UTC label for provenance strings."""
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def epoch_s(text: str) -> int:
    """Whole seconds since the epoch of an ISO time."""
    return int(parse_iso(text).timestamp())


def from_datetime64(t: Any) -> datetime:
    """numpy ``datetime64`` (naive UTC) -> aware UTC datetime, to the second."""
    import numpy as np  # lazy: numpy is not a dependency of the collector

    secs = int(np.asarray(t).astype("datetime64[s]").astype(np.int64))
    return EPOCH + timedelta(seconds=secs)


def floor_time(ts: datetime, step: timedelta) -> datetime:
    """Start of the ``step``-aligned (from the epoch) interval containing ``ts``."""
    return ts - (ts - EPOCH) % step


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
