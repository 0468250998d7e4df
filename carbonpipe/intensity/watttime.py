"""WattTime API v3: marginal (MOER) emissions, converted to g/kWh and labelled marginal.

Login is ``GET /login`` with HTTP Basic auth -> ``{"token": ...}``, then ``Bearer``. An expired
token or bad credentials answer 403 with nginx's HTML page, so on 401/403 we log in again once
and retry; a second refusal is a typed error (``ZoneNotAllowed`` when the body names the
"scope" of the plan, else ``AuthError``). ``co2_moer`` values are lbs CO2/MWh (``meta.units``).
``signal-index`` is a 0-100 *percentile*, not an intensity: it is exposed only as
:class:`SignalIndex`, never as g/kWh. Docs: https://docs.watttime.org
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from carbonpipe.core.timeutil import parse_iso
from carbonpipe.intensity.base import Clock, overlaps, require_aware, utcnow
from carbonpipe.intensity.errors import (
    AuthError,
    BadRequest,
    NotCovered,
    ProviderError,
    ProviderUnavailable,
    ZoneNotAllowed,
)
from carbonpipe.intensity.http import HttpJsonClient
from carbonpipe.intensity.model import LBS_PER_MWH_TO_G_PER_KWH, IntensityPoint, Kind

NAME = "watttime"
SIGNAL_TYPE = "co2_moer"
SOURCE = "WattTime API v3"
# Grid zones (Electricity Maps ids) -> WattTime regions. CAISO_NORTH is the region WattTime
# opens to every account (docs.watttime.org); it covers only northern California.
ZONE_TO_REGION = {"US-CAL-CISO": "CAISO_NORTH"}
REGION_RE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")  # e.g. CAISO_NORTH, PSCO
UNIT_FACTORS = {"lbs_co2_per_mwh": LBS_PER_MWH_TO_G_PER_KWH, "g_co2_per_kwh": 1.0}


@dataclass(frozen=True, slots=True)
class SignalIndex:
    """WattTime's relative signal: where now sits among recent MOER values (0-100)."""

    region: str
    point_time: datetime
    percentile: float
    signal_type: str = SIGNAL_TYPE
    provider: str = NAME


def region_for(zone: str) -> str:
    """WattTime region for a zone id, or the zone itself when it already is a region name."""
    if zone.upper() in ZONE_TO_REGION:
        return ZONE_TO_REGION[zone.upper()]
    if "_" in zone or (REGION_RE.match(zone) and "-" not in zone and len(zone) > 3):
        return zone
    raise NotCovered(
        NAME,
        f"no WattTime region known for zone {zone}; known zones "
        f"{sorted(ZONE_TO_REGION)} or pass a WattTime region such as CAISO_NORTH",
    )


class WattTimeProvider:
    """Marginal emissions for WattTime regions (zone ids mapped by ``ZONE_TO_REGION``)."""

    name = NAME

    def __init__(
        self,
        http: HttpJsonClient,
        username: str | None,
        password: str | None,
        clock: Clock = utcnow,
    ) -> None:
        self.http = http
        self._username = username
        self._password = password
        self._token: str | None = None
        http.add_secret(password)
        self.clock = clock

    def __repr__(self) -> str:
        return f"WattTimeProvider(base_url={self.http.base_url!r}, username=***, password=***)"

    # -------------------------------------------------------------------------- auth
    def _login(self) -> str:
        if not (self._username and self._password):
            raise AuthError(
                NAME,
                "no credentials: set CARBONPIPE_WATTTIME_USERNAME and CARBONPIPE_WATTTIME_PASSWORD",
            )
        try:
            body = self.http.get_json(
                "/login", use_cache=False, auth=(self._username, self._password)
            )
        except AuthError as exc:
            raise AuthError(NAME, f"login refused: {exc.detail}", exc.status) from None
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ProviderUnavailable(NAME, "login answer has no token", 200)
        self.http.add_secret(token)
        self._token = token
        return token

    def _get(self, path: str, params: dict[str, str]) -> Any:
        token = self._token or self._login()
        try:
            return self.http.get_json(path, params, headers={"Authorization": f"Bearer {token}"})
        except AuthError:
            pass  # expired token (403 HTML) or plan scope: log in again once
        token = self._login()
        try:
            return self.http.get_json(path, params, headers={"Authorization": f"Bearer {token}"})
        except AuthError as exc:
            if "scope" in exc.detail.lower():
                raise ZoneNotAllowed(NAME, exc.detail, exc.status) from None
            raise

    # -------------------------------------------------------------------------- parsing
    def _points(
        self, zone: str, body: Any, kind: Kind, path: str, rows: list[dict[str, Any]] | None = None
    ) -> list[IntensityPoint]:
        try:
            meta = body.get("meta", {})
            units = str(meta.get("units", "lbs_co2_per_mwh"))
            if units not in UNIT_FACTORS:
                raise BadRequest(NAME, f"{path} answered in {units!r}, not an emission rate", 200)
            factor = UNIT_FACTORS[units]
            step = timedelta(seconds=int(meta.get("data_point_period_seconds", 300)))
            region = str(meta.get("region", zone))
            out = []
            for r in body["data"] if rows is None else rows:
                if r.get("value") is None:
                    continue
                start = parse_iso(r["point_time"])
                out.append(
                    IntensityPoint(
                        zone=zone,
                        start=start,
                        end=start + step,
                        carbon_intensity_g_per_kwh=float(r["value"]) * factor,
                        provider=NAME,
                        kind=kind,
                        signal="marginal",
                        source=f"{SOURCE} {path} region={region} {units} -> g/kWh",
                    )
                )
            return out
        except ProviderError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderUnavailable(
                NAME, f"unexpected body shape ({exc!r}) for {path}", 200
            ) from None

    # -------------------------------------------------------------------------- API
    def signal_index(self, zone: str) -> SignalIndex:
        """The current percentile (0-100). Not an intensity: never turn it into g/kWh."""
        region = region_for(zone)
        body = self._get("/v3/signal-index", {"region": region, "signal_type": SIGNAL_TYPE})
        try:
            row = body["data"][0]
            units = body.get("meta", {}).get("units", "percentile")
            if units != "percentile":
                raise ValueError(f"units {units!r}")
            return SignalIndex(
                region=str(body.get("meta", {}).get("region", region)),
                point_time=parse_iso(row["point_time"]),
                percentile=float(row["value"]),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ProviderUnavailable(
                NAME, f"unexpected signal-index body ({exc!r})", 200
            ) from None

    def history(self, zone: str, start: datetime, end: datetime) -> list[IntensityPoint]:
        start, end = require_aware(start, "start"), require_aware(end, "end")
        region, path = region_for(zone), "/v3/historical"
        body = self._get(
            path,
            {
                "region": region,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "signal_type": SIGNAL_TYPE,
            },
        )
        pts = self._points(zone, body, "actual", path)
        return sorted((p for p in pts if overlaps(p, start, end)), key=lambda p: p.start)

    def current(self, zone: str) -> IntensityPoint:
        now = self.clock()
        pts = self.history(zone, now - timedelta(minutes=30), now)
        if not pts:
            raise ProviderUnavailable(NAME, f"no recent MOER value for {zone}", 200)
        return pts[-1]

    def forecast(self, zone: str, horizon: timedelta) -> list[IntensityPoint]:
        region, path = region_for(zone), "/v3/forecast"
        hours = max(1, math.ceil(horizon.total_seconds() / 3600))
        body = self._get(
            path, {"region": region, "signal_type": SIGNAL_TYPE, "horizon_hours": str(hours)}
        )
        rows = _forecast_rows(body)
        now = self.clock()
        pts = self._points(zone, body, "forecast", path, rows)
        return [p for p in pts if overlaps(p, now, now + horizon)]

    def forecast_historical(
        self, zone: str, start: datetime, end: datetime
    ) -> dict[datetime, list[IntensityPoint]]:
        """Forecasts as issued in the past, by issue time (for forecast-error studies)."""
        region, path = region_for(zone), "/v3/forecast/historical"
        start, end = require_aware(start, "start"), require_aware(end, "end")
        body = self._get(
            path,
            {
                "region": region,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "signal_type": SIGNAL_TYPE,
            },
        )
        try:
            issues = [(parse_iso(d["generated_at"]), d["forecast"]) for d in body["data"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderUnavailable(
                NAME, f"unexpected body shape ({exc!r}) for {path}", 200
            ) from None
        return {at: self._points(zone, body, "forecast", path, rows) for at, rows in issues}


def _forecast_rows(body: Any) -> list[dict[str, Any]]:
    """/v3/forecast: flat ``data`` rows; also accept the nested historical shape (newest issue)."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ProviderUnavailable(NAME, "forecast answer has no 'data' list", 200)
    if data and isinstance(data[0], dict) and "forecast" in data[0]:
        newest = max(data, key=lambda d: str(d.get("generated_at", "")))
        rows: list[dict[str, Any]] = newest["forecast"]
        return rows
    return data
