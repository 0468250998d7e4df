"""Contract tests: WattTime v3 (login, marginal MOER, percentile index), real bodies."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from carbonpipe.core.timeutil import parse_iso
from carbonpipe.intensity.chain import build_provider
from carbonpipe.intensity.errors import AuthError, NotCovered, ZoneNotAllowed
from carbonpipe.intensity.model import LBS_PER_MWH_TO_G_PER_KWH
from carbonpipe.intensity.watttime import SignalIndex, WattTimeProvider

from .conftest import FixtureServer, Reply, fixture_json, fixture_reply

UTC = timezone.utc
WT = "watttime"
USER, PASSWORD, TOKEN = "alice", "pa55-w0rd-secret", "abcd1234"  # aiowatttime's test token
LOGIN_OK = Reply(200, b'{"token": "abcd1234"}')


def wt(server: FixtureServer, make_settings, now: datetime | None = None) -> WattTimeProvider:
    s = make_settings(
        watttime_base_url=server.url, watttime_username=USER, watttime_password=PASSWORD
    )
    p = build_provider("watttime", s, clock=(lambda: now) if now else datetime.now)
    assert isinstance(p, WattTimeProvider)
    return p


def test_login_basic_then_bearer_and_historical_converted(
    server: FixtureServer, fixtures_dir: Path, make_settings
) -> None:
    f = fixtures_dir / WT / "historical.json"
    server.route(r"/login", LOGIN_OK)
    server.route(r"/v3/historical", fixture_reply(f))
    start = datetime(2022, 7, 15, tzinfo=UTC)
    pts = wt(server, make_settings).history("CAISO_NORTH", start, start + timedelta(minutes=10))
    login, hist = server.requests
    assert (
        login.headers["Authorization"]
        == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    )
    assert hist.headers["Authorization"] == f"Bearer {TOKEN}"
    assert hist.query["region"] == ["CAISO_NORTH"] and hist.query["signal_type"] == ["co2_moer"]
    rows = fixture_json(f)["data"]
    assert len(pts) == len(rows) == 2
    for p, r in zip(pts, rows, strict=True):
        assert p.start == parse_iso(r["point_time"]) and p.end == p.start + timedelta(seconds=300)
        assert p.carbon_intensity_g_per_kwh == pytest.approx(r["value"] * 0.45359237)
        assert (p.signal, p.kind, p.provider) == ("marginal", "actual", "watttime")
        assert "lbs_co2_per_mwh" in p.source
    assert pts[0].carbon_intensity_g_per_kwh == pytest.approx(870 * LBS_PER_MWH_TO_G_PER_KWH)


def test_zone_maps_to_region(server: FixtureServer, fixtures_dir: Path, make_settings) -> None:
    server.route(r"/login", LOGIN_OK)
    server.route(r"/v3/historical", fixture_reply(fixtures_dir / WT / "historical.json"))
    p = wt(server, make_settings, datetime(2022, 7, 15, 0, 9, tzinfo=UTC))
    cur = p.current("US-CAL-CISO")
    assert cur.zone == "US-CAL-CISO" and cur.start == datetime(2022, 7, 15, 0, 5, tzinfo=UTC)
    assert server.requests[-1].query["region"] == ["CAISO_NORTH"]
    with pytest.raises(NotCovered, match="CAISO_NORTH"):
        p.current("GB")


def test_signal_index_is_a_percentile_never_an_intensity(
    server: FixtureServer, fixtures_dir: Path, make_settings
) -> None:
    server.route(r"/login", LOGIN_OK)
    server.route(r"/v3/signal-index", fixture_reply(fixtures_dir / WT / "signal-index.json"))
    idx = wt(server, make_settings).signal_index("PSCO")
    assert idx == SignalIndex(
        region="PSCO", point_time=datetime(2024, 6, 18, 18, 40, tzinfo=UTC), percentile=96.0
    )
    assert not hasattr(idx, "carbon_intensity_g_per_kwh")


def test_forecast_and_forecast_historical(
    server: FixtureServer, fixtures_dir: Path, make_settings
) -> None:
    f = fixtures_dir / WT / "forecast-historical.json"
    server.route(r"/login", LOGIN_OK)
    # No real /v3/forecast body exists (README gap); the parser also accepts the nested shape.
    server.route(r"/v3/forecast", fixture_reply(f))
    server.route(r"/v3/forecast/historical", fixture_reply(f))
    now = datetime(2022, 7, 15, tzinfo=UTC)
    p = wt(server, make_settings, now)
    fc = p.forecast("CAISO_NORTH", timedelta(hours=1))
    rows = fixture_json(f)["data"][0]["forecast"]
    assert [x.start for x in fc] == [parse_iso(r["point_time"]) for r in rows]
    assert all(x.kind == "forecast" and x.signal == "marginal" for x in fc)
    assert fc[0].carbon_intensity_g_per_kwh == pytest.approx(870 * 0.45359237)
    assert server.requests[-1].query["horizon_hours"] == ["1"]
    issued = p.forecast_historical("CAISO_NORTH", now, now + timedelta(hours=1))
    assert list(issued) == [datetime(2022, 7, 15, tzinfo=UTC)] and len(issued[now]) == 3


def test_expired_token_403_html_relogs_in_once(
    server: FixtureServer, fixtures_dir: Path, make_settings
) -> None:
    server.route(r"/login", LOGIN_OK)
    server.route(
        r"/v3/historical",
        [
            fixture_reply(fixtures_dir / WT / "error-403-forbidden.html", 403),
            fixture_reply(fixtures_dir / WT / "historical.json"),
        ],
    )
    start = datetime(2022, 7, 15, tzinfo=UTC)
    pts = wt(server, make_settings).history("CAISO_NORTH", start, start + timedelta(hours=1))
    assert len(pts) == 2 and server.hits(r"/login") == 2


def test_persistent_403_html_is_auth_error_after_one_relogin(
    server: FixtureServer, fixtures_dir: Path, make_settings
) -> None:
    server.route(r"/login", LOGIN_OK)
    server.route(r"/v3/.*", fixture_reply(fixtures_dir / WT / "error-403-forbidden.html", 403))
    with pytest.raises(AuthError) as err:
        wt(server, make_settings).signal_index("CAISO_NORTH")
    assert err.value.status == 403 and "403 Forbidden" in str(err.value)
    assert "<html>" not in str(err.value)
    assert server.hits(r"/login") == 2 and server.hits(r"/v3/.*") == 2


def test_invalid_scope_403_is_zone_not_allowed(
    server: FixtureServer, fixtures_dir: Path, make_settings
) -> None:
    server.route(r"/login", LOGIN_OK)
    server.route(r"/v3/.*", fixture_reply(fixtures_dir / WT / "error-403-invalid-scope.json", 403))
    with pytest.raises(ZoneNotAllowed, match="Invalid scope"):
        wt(server, make_settings).history(
            "PSCO", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
        )


def test_404_no_coverage_is_not_covered(
    server: FixtureServer, fixtures_dir: Path, make_settings
) -> None:
    server.route(r"/login", LOGIN_OK)
    server.route(
        r"/v3/.*",
        fixture_reply(fixtures_dir / WT / "error-404-region-from-loc-no-coverage.json", 404),
    )
    with pytest.raises(NotCovered, match="No coverage available") as err:
        wt(server, make_settings).signal_index("PSCO")
    assert err.value.status == 404


def test_login_refused_and_secrets_redacted(
    server: FixtureServer, fixtures_dir: Path, make_settings
) -> None:
    server.route(
        r"/login", Reply(403, f"bad password {PASSWORD}".encode(), {"Content-Type": "text/plain"})
    )
    p = wt(server, make_settings)
    with pytest.raises(AuthError, match="login refused") as err:
        p.signal_index("PSCO")
    assert PASSWORD not in str(err.value) and "***" in str(err.value)
    assert PASSWORD not in repr(p) and USER not in repr(p)


def test_missing_credentials_fail_without_calling_out(server: FixtureServer, make_settings) -> None:
    p = build_provider("watttime", make_settings(watttime_base_url=server.url))
    with pytest.raises(AuthError, match="CARBONPIPE_WATTTIME_USERNAME"):
        p.current("CAISO_NORTH")
    assert server.requests == []
