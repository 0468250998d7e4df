"""Electricity Maps API v3: latest, history (24 h), past-range and forecast, hourly.

``auth-token`` header from settings only. ``datetime`` is the start of the hour (UTC, ``Z``),
``carbonIntensity`` is gCO2eq/kWh (life-cycle unless ``emissionFactorType`` says otherwise,
which is recorded in ``source``). A 401/403 naming ``zoneKey=`` means the zone is outside the
token's plan (``ZoneNotAllowed``), any other 401/403 a bad token (``AuthError``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from carbonpipe.core.timeutil import parse_iso
from carbonpipe.intensity.base import Clock, overlaps, require_aware, utcnow
from carbonpipe.intensity.errors import (
    AuthError,
    ProviderError,
    ProviderUnavailable,
    ZoneNotAllowed,
)
from carbonpipe.intensity.http import HttpJsonClient, error_detail
from carbonpipe.intensity.model import IntensityPoint, Kind

NAME = "electricitymaps"
STEP = timedelta(hours=1)  # hourly granularity (the default of every v3 endpoint used here)
PAST_RANGE_CHUNK = timedelta(days=10)  # keep each past-range request to a modest span
SOURCE = "Electricity Maps API v3"


class ElectricityMapsProvider:
    """Any Electricity Maps zone the token's plan allows."""

    name = NAME

    def __init__(self, http: HttpJsonClient, token: str | None, clock: Clock = utcnow) -> None:
        self.http = http
        self._token = token
        http.add_secret(token)
        self.clock = clock

    def __repr__(self) -> str:
        return f"ElectricityMapsProvider(base_url={self.http.base_url!r}, token=***)"

    def _on_error(self, resp: httpx.Response, what: str) -> ProviderError | None:
        if resp.status_code in (401, 403) and "zoneKey=" in resp.text:
            return ZoneNotAllowed(
                NAME, self.http.redact(f"{error_detail(resp)} ({what})"), resp.status_code
            )
        return None

    def _get(self, path: str, params: dict[str, str]) -> Any:
        if not self._token:
            raise AuthError(NAME, "no token configured: set CARBONPIPE_ELECTRICITYMAPS_TOKEN")
        return self.http.get_json(
            path, params, headers={"auth-token": self._token}, on_error=self._on_error
        )

    def _point(self, zone: str, row: dict[str, Any], kind: Kind, path: str) -> IntensityPoint:
        start = parse_iso(row["datetime"])
        notes = [
            x
            for x in (
                row.get("emissionFactorType"),
                f"estimated {row.get('estimationMethod') or ''}".strip()
                if row.get("isEstimated")
                else None,
            )
            if x
        ]
        suffix = f" ({', '.join(notes)})" if notes else ""
        value = row["carbonIntensity"]
        if value is None:
            raise ValueError(f"no carbonIntensity at {row['datetime']}")
        return IntensityPoint(
            zone=str(row.get("zone") or zone),
            start=start,
            end=start + STEP,
            carbon_intensity_g_per_kwh=float(value),
            provider=NAME,
            kind=kind,
            signal="average",
            source=f"{SOURCE} {path}{suffix}",
        )

    def _points(self, zone: str, rows: Any, kind: Kind, path: str) -> list[IntensityPoint]:
        try:
            return [
                self._point(zone, r, kind, path)
                for r in rows
                if r.get("carbonIntensity") is not None
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderUnavailable(
                NAME, f"unexpected body shape ({exc!r}) for {path}", 200
            ) from None

    def current(self, zone: str) -> IntensityPoint:
        path = "/carbon-intensity/latest"
        body = self._get(path, {"zone": zone})
        pts = self._points(zone, [body] if isinstance(body, dict) else body, "actual", path)
        if not pts:
            raise ProviderUnavailable(NAME, f"no value for {zone} in {path}", 200)
        return pts[0]

    def history(self, zone: str, start: datetime, end: datetime) -> list[IntensityPoint]:
        start, end = require_aware(start, "start"), require_aware(end, "end")
        if start >= self.clock() - timedelta(hours=24):
            path = "/carbon-intensity/history"  # the last 24 hours
            body = self._get(path, {"zone": zone})
            pts = self._points(zone, _rows(body, "history"), "actual", path)
        else:
            path, pts, t = "/carbon-intensity/past-range", [], start
            while t < end:
                t2 = min(end, t + PAST_RANGE_CHUNK)
                params = {"zone": zone, "start": t.isoformat(), "end": t2.isoformat()}
                body = self._get(path, params)
                pts += self._points(zone, _rows(body, "data"), "actual", path)
                t = t2
        seen = {p.start: p for p in pts if overlaps(p, start, end)}
        return [seen[k] for k in sorted(seen)]

    def forecast(self, zone: str, horizon: timedelta) -> list[IntensityPoint]:
        path = "/carbon-intensity/forecast"
        body = self._get(path, {"zone": zone})
        now = self.clock()
        pts = self._points(zone, _rows(body, "forecast"), "forecast", path)
        return sorted((p for p in pts if overlaps(p, now, now + horizon)), key=lambda p: p.start)


def _rows(body: Any, key: str) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        raise ProviderUnavailable(NAME, f"answer has no {key!r} list", 200)
    return body[key]
