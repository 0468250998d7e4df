"""The provider interface and small time helpers every provider shares."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

from carbonpipe.core.timeutil import utcnow
from carbonpipe.intensity.model import IntensityPoint

__all__ = ["Clock", "IntensityProvider", "overlaps", "require_aware", "utcnow"]

Clock = Callable[[], datetime]


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


def overlaps(p: IntensityPoint, start: datetime, end: datetime) -> bool:
    return p.start < end and p.end > start


def require_aware(ts: datetime, what: str) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware (UTC)")
    return ts.astimezone(timezone.utc)
