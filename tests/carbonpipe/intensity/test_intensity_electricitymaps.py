"""Contract tests: Electricity Maps v3, real recorded bodies from ../shared."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from carbonpipe.core.timeutil import parse_iso
from carbonpipe.intensity.chain import build_provider
from carbonpipe.intensity.electricitymaps import ElectricityMapsProvider
from carbonpipe.intensity.errors import AuthError, NotCovered, ZoneNotAllowed

from .conftest import FixtureServer, Reply, fixture_json, fixture_reply

UTC = timezone.utc
TOKEN = "s3cr3t-token-value"
EM = "electricity-maps"


def em(
    server: FixtureServer, make_settings, now: datetime | None = None, token: str | None = TOKEN
) -> ElectricityMapsProvider:
    s = make_settings(electricitymaps_base_url=server.url + "/v3", electricitymaps_token=token)
    p = build_provider("electricitymaps", s, clock=(lambda: now) if now else datetime.now)
    assert isinstance(p, ElectricityMapsProvider)
    return p


@pytest.mark.parametrize(
    ("name", "zone", "value", "start"),
    [
        ("carbon-intensity-latest.json", "US-CAR-DUK", 216.0, datetime(2024, 3, 6, 19, tzinfo=UTC)),
        ("carbon-intensity-latest-be.json", "BE", 214.0, datetime(2024, 11, 28, 15, tzinfo=UTC)),
    ],
)
def test_latest(
    server: FixtureServer,
    fixtures_dir: Path,
    make_settings,
    name: str,
    zone: str,
    value: float,
    start: datetime,
) -> None:
    server.route(r"/v3/carbon-intensity/latest", fixture_reply(fixtures_dir / EM / name))
    p = em(server, make_settings).current(zone)
    assert (p.zone, p.carbon_intensity_g_per_kwh, p.start, p.end) == (
        zone,
        value,
        start,
        start + timedelta(hours=1),
    )
    assert (p.provider, p.kind, p.signal) == ("electricitymaps", "actual", "average")
    assert "lifecycle" in p.source and "estimated TIME_SLICER_AVERAGE" in p.source
    req = server.requests[0]
    assert req.headers.get("auth-token") == TOKEN and req.query == {"zone": [zone]}


def test_history_24h_every_row(server: FixtureServer, fixtures_dir: Path, make_settings) -> None:
    f = fixtures_dir / EM / "carbon-intensity-history.json"
    server.route(r"/v3/carbon-intensity/history", fixture_reply(f))
    now = datetime(2024, 3, 6, 20, 5, tzinfo=UTC)
    pts = em(server, make_settings, now).history("DE", now - timedelta(hours=24), now)
    rows = fixture_json(f)["history"]
    assert len(pts) == len(rows) == 24
    for p, r in zip(pts, rows, strict=True):
        assert (p.start, p.carbon_intensity_g_per_kwh, p.zone) == (
            parse_iso(r["datetime"]),
            float(r["carbonIntensity"]),
            "DE",
        )
    assert {p.carbon_intensity_g_per_kwh for p in pts} >= {492.0, 689.0}


def test_past_range(server: FixtureServer, fixtures_dir: Path, make_settings) -> None:
    server.route(
        r"/v3/carbon-intensity/past-range",
        fixture_reply(fixtures_dir / EM / "carbon-intensity-past-range.json"),
    )
    start = datetime(2024, 3, 18, 2, tzinfo=UTC)
    pts = em(server, make_settings, datetime(2025, 1, 1, tzinfo=UTC)).history(
        "DK-DK2", start, start + timedelta(hours=2)
    )
    assert [(p.start.hour, p.carbon_intensity_g_per_kwh) for p in pts] == [(2, 161.0), (3, 167.0)]
    q = server.requests[0].query
    assert q["zone"] == ["DK-DK2"] and parse_iso(q["start"][0]) == start


def test_forecast_every_row(server: FixtureServer, fixtures_dir: Path, make_settings) -> None:
    f = fixtures_dir / EM / "carbon-intensity-forecast.json"
    server.route(r"/v3/carbon-intensity/forecast", fixture_reply(f))
    now = datetime(2023, 5, 2, 20, 0, tzinfo=UTC)
    pts = em(server, make_settings, now).forecast("DE", timedelta(hours=48))
    rows = fixture_json(f)["forecast"]
    assert len(pts) == len(rows) == 48
    for p, r in zip(pts, rows, strict=True):
        assert (p.start, p.carbon_intensity_g_per_kwh, p.kind) == (
            parse_iso(r["datetime"]),
            float(r["carbonIntensity"]),
            "forecast",
        )
    assert pts[0].carbon_intensity_g_per_kwh == 557.0


def test_401_invalid_token_is_auth_error_and_token_is_never_shown(
    server: FixtureServer, fixtures_dir: Path, make_settings
) -> None:
    server.route(
        r"/v3/.*", fixture_reply(fixtures_dir / EM / "error-401-invalid-auth-token.json", 401)
    )
    p = em(server, make_settings)
    with pytest.raises(AuthError) as err:
        p.current("DE")
    assert err.value.status == 401 and "Invalid auth-token" in str(err.value)
    assert TOKEN not in str(err.value) and TOKEN not in repr(p)
    assert TOKEN not in repr(make_settings(electricitymaps_token=TOKEN))
    assert server.hits(r"/v3/.*") == 1


@pytest.mark.parametrize("status", [401, 403])
def test_zone_not_in_plan_is_zone_not_allowed(
    server: FixtureServer, fixtures_dir: Path, make_settings, status: int
) -> None:
    server.route(
        r"/v3/.*", fixture_reply(fixtures_dir / EM / "error-zone-not-in-plan.json", status)
    )
    with pytest.raises(ZoneNotAllowed) as err:
        em(server, make_settings).current("IT")
    assert isinstance(err.value, NotCovered) and "zoneKey=IT" in str(err.value)


def test_no_token_fails_without_calling_out(server: FixtureServer, make_settings) -> None:
    with pytest.raises(AuthError, match="CARBONPIPE_ELECTRICITYMAPS_TOKEN"):
        em(server, make_settings, token=None).current("DE")
    assert server.requests == []


def test_404_non_json_body_is_not_covered(server: FixtureServer, make_settings) -> None:
    server.route(r"/v3/.*", Reply(404, b"<h1>Not Found</h1>", {"Content-Type": "text/html"}))
    with pytest.raises(NotCovered, match="Not Found"):
        em(server, make_settings).current("ATLANTIS")
