"""NESO (National Grid ESO) Carbon Intensity API: GB national half-hourly values, no key.

API facts from the official docs (https://carbon-intensity.github.io/api-definitions/):
path parameters ``YYYY-MM-DDThh:mmZ`` in UTC, rows are half-hour settlement periods with
``intensity.forecast`` and ``intensity.actual`` in gCO2/kWh; ``actual`` is null until the
period closes. A period with an actual is reported as ``kind="actual"``, else as forecast.
Data licence: CC BY 4.0, National Energy System Operator (NESO).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from carbonpipe.core.timeutil import floor_time, parse_iso
from carbonpipe.intensity.base import Clock, overlaps, require_aware, utcnow
from carbonpipe.intensity.errors import NotCovered, ProviderUnavailable
from carbonpipe.intensity.http import HttpJsonClient
from carbonpipe.intensity.model import IntensityPoint, Kind

NAME = "uk"
ZONES = ("GB",)
PERIOD = timedelta(minutes=30)  # settlement period (API docs)
MAX_RANGE = timedelta(days=14)  # API definition allows 30 days per /{from}/{to}; stay well inside
SOURCE = "NESO Carbon Intensity API (CC BY 4.0)"


def _path_time(ts: datetime) -> str:
    return require_aware(ts, "time").strftime("%Y-%m-%dT%H:%MZ")


class UKProvider:
    """GB national intensity from api.carbonintensity.org.uk (zone GB only)."""

    name = NAME

    def __init__(self, http: HttpJsonClient, clock: Clock = utcnow) -> None:
        self.http = http
        self.clock = clock

    def _check(self, zone: str) -> None:
        if zone.upper() not in ZONES:
            raise NotCovered(NAME, f"zone {zone} not served; the UK API covers {list(ZONES)}")

    def _rows(self, path: str) -> list[IntensityPoint]:
        body = self.http.get_json(path)
        try:
            return [self._point(r, path) for r in body["data"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderUnavailable(
                NAME, f"unexpected body shape ({exc!r}) for GET {path}", 200
            ) from None

    @staticmethod
    def _point(row: dict[str, Any], path: str) -> IntensityPoint:
        intensity = row["intensity"]
        actual, fcst = intensity.get("actual"), intensity.get("forecast")
        if actual is None and fcst is None:
            raise ValueError(f"period {row.get('from')} has neither actual nor forecast")
        kind: Kind = "actual" if actual is not None else "forecast"
        value = actual if actual is not None else fcst
        return IntensityPoint(
            zone="GB",
            start=parse_iso(row["from"]),
            end=parse_iso(row["to"]),
            carbon_intensity_g_per_kwh=float(value),
            provider=NAME,
            kind=kind,
            signal="average",
            source=f"{SOURCE} {path}",
        )

    def current(self, zone: str) -> IntensityPoint:
        self._check(zone)
        rows = self._rows("/intensity")
        if not rows:
            raise ProviderUnavailable(NAME, "empty answer for GET /intensity", 200)
        return rows[0]

    def history(self, zone: str, start: datetime, end: datetime) -> list[IntensityPoint]:
        self._check(zone)
        start, end = require_aware(start, "start"), require_aware(end, "end")
        if end - start <= timedelta(hours=24):
            rows = self._rows(f"/intensity/{_path_time(end)}/pt24h")
        else:
            rows, t = [], start
            while t < end:
                t2 = min(end, t + MAX_RANGE)
                rows += self._rows(f"/intensity/{_path_time(t)}/{_path_time(t2)}")
                t = t2
        seen: dict[datetime, IntensityPoint] = {p.start: p for p in rows if overlaps(p, start, end)}
        return [seen[k] for k in sorted(seen)]

    def forecast(self, zone: str, horizon: timedelta) -> list[IntensityPoint]:
        self._check(zone)
        now = self.clock()
        frm = floor_time(now, PERIOD)
        rows = self._rows(f"/intensity/{_path_time(frm)}/fw48h")
        return [p for p in rows if overlaps(p, frm, now + horizon)]
