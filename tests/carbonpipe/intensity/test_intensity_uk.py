"""Contract tests: NESO Carbon Intensity API, real recorded bodies from ../shared."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from carbonpipe.core.timeutil import parse_iso
from carbonpipe.intensity.chain import build_provider
from carbonpipe.intensity.errors import BadRequest, NotCovered, ProviderUnavailable
from carbonpipe.intensity.uk import UKProvider

from .conftest import FixtureServer, Reply, fixture_json, fixture_reply

UTC = timezone.utc


def uk(server: FixtureServer, make_settings, now: datetime | None = None) -> UKProvider:
    p = build_provider(
        "uk", make_settings(uk_base_url=server.url), clock=(lambda: now) if now else datetime.now
    )
    assert isinstance(p, UKProvider)
    return p


def expected(row: dict) -> tuple[datetime, datetime, float, str]:
    i = row["intensity"]
    kind = "actual" if i["actual"] is not None else "forecast"
    value = i["actual"] if i["actual"] is not None else i["forecast"]
    return parse_iso(row["from"]), parse_iso(row["to"]), float(value), kind


def test_current_actual(server: FixtureServer, fixtures_dir: Path, make_settings) -> None:
    f = fixtures_dir / "uk-national-grid" / "intensity-current.docs.json"
    server.route(r"/intensity", fixture_reply(f))
    p = uk(server, make_settings).current("GB")
    assert (p.zone, p.start, p.end) == (
        "GB",
        datetime(2018, 1, 20, 12, 0, tzinfo=UTC),
        datetime(2018, 1, 20, 12, 30, tzinfo=UTC),
    )
    assert (p.carbon_intensity_g_per_kwh, p.kind, p.provider, p.signal) == (
        263.0,
        "actual",
        "uk",
        "average",
    )
    assert "NESO" in p.source
    assert server.requests[0].headers.get("Accept") == "application/json"


def test_forecast_fw48h_every_row(server: FixtureServer, fixtures_dir: Path, make_settings) -> None:
    f = fixtures_dir / "uk-national-grid" / "intensity-fw48h.json"
    server.route(r"/intensity/2023-03-14T12:00Z/fw48h", fixture_reply(f))
    now = datetime(2023, 3, 14, 12, 10, tzinfo=UTC)
    pts = uk(server, make_settings, now).forecast("GB", timedelta(hours=48))
    rows = fixture_json(f)["data"]
    assert len(pts) == len(rows) == 96
    for p, row in zip(pts, rows, strict=True):
        assert (p.start, p.end, p.carbon_intensity_g_per_kwh, p.kind) == expected(row)
        assert p.kind == "forecast"  # actual is null in every fw48h row of this recording
    assert pts[0].carbon_intensity_g_per_kwh == 93.0
    short = uk(server, make_settings, now).forecast("GB", timedelta(hours=2))
    assert [p.start.strftime("%H:%M") for p in short] == [
        "12:00",
        "12:30",
        "13:00",
        "13:30",
        "14:00",
    ]


def test_history_pt24h_every_row(server: FixtureServer, fixtures_dir: Path, make_settings) -> None:
    f = fixtures_dir / "uk-national-grid" / "intensity-pt24h.json"
    server.route(r"/intensity/2023-03-14T12:00Z/pt24h", fixture_reply(f))
    rows = fixture_json(f)["data"]
    start, end = parse_iso(rows[0]["from"]), parse_iso(rows[-1]["to"])
    pts = uk(server, make_settings).history("GB", start, end)
    assert len(pts) == len(rows) == 48
    for p, row in zip(pts, rows, strict=True):
        assert (p.start, p.end, p.carbon_intensity_g_per_kwh, p.kind) == expected(row)
    assert pts[0].carbon_intensity_g_per_kwh == 54.0 and pts[0].kind == "actual"


def test_error_400_is_bad_request(server: FixtureServer, fixtures_dir: Path, make_settings) -> None:
    f = fixtures_dir / "uk-national-grid" / "error-400-postcode.json"
    server.route(r"/intensity", fixture_reply(f, 400))
    with pytest.raises(BadRequest) as err:
        uk(server, make_settings).current("GB")
    assert err.value.status == 400 and err.value.provider == "uk"
    assert "No postcode match can be found." in str(err.value)
    assert server.hits(r"/intensity") == 1  # a 400 is not retried


def test_error_500_is_unavailable_after_retries(
    server: FixtureServer, fixtures_dir: Path, make_settings
) -> None:
    f = fixtures_dir / "uk-national-grid" / "error-500-resource-not-found.json"
    server.route(r"/intensity", fixture_reply(f, 500))
    with pytest.raises(ProviderUnavailable) as err:
        uk(server, make_settings).current("GB")
    assert err.value.status == 500 and "Requested resource not found." in str(err.value)
    assert server.hits(r"/intensity") == 3  # 1 + http_retries=2


def test_zone_other_than_gb_is_not_covered_without_a_call(
    server: FixtureServer, make_settings
) -> None:
    with pytest.raises(NotCovered, match="GB"):
        uk(server, make_settings).current("DE")
    assert server.requests == []


def test_malformed_body_is_a_typed_error(server: FixtureServer, make_settings) -> None:
    server.route(r"/intensity", Reply(200, b'{"data": [{"from": "x"}]}'))
    with pytest.raises(ProviderUnavailable, match="unexpected body"):
        uk(server, make_settings).current("GB")
