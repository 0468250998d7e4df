"""The provider interface and small time helpers every provider shares."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

from carbonpipe.intensity.model import IntensityPoint

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@runtime_checkable
class IntensityProvider(Protocol):
    """What the chain, the CLI, the feeder and the scheduler ask of any intensity source."""

    name: str

    def current(self, zone: str) -> IntensityPoint:
        """The value for the interval containing now."""
        ...

    def history(self, zone: str, start: datetime, end: datetime) -> list[IntensityPoint]:
        """Values for intervals overlapping [start, end), oldest first."""
        ...

    def forecast(self, zone: str, horizon: timedelta) -> list[IntensityPoint]:
        """Values from the interval containing now to now + horizon, oldest first."""
        ...


def parse_time(text: str) -> datetime:
    """ISO 8601 from any provider (``Z``, ``+00:00``, minute precision) -> aware UTC."""
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def floor_time(ts: datetime, step: timedelta) -> datetime:
    """Start of the ``step``-aligned (from the epoch) interval containing ``ts``."""
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return ts - (ts - epoch) % step


def overlaps(p: IntensityPoint, start: datetime, end: datetime) -> bool:
    return p.start < end and p.end > start


def require_aware(ts: datetime, what: str) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware (UTC)")
    return ts.astimezone(timezone.utc)
