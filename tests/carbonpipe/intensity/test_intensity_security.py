"""A provider's token goes to the configured host only, and its values are range-checked.

Real HTTP on loopback (two servers on two ports = two origins): the provider is redirected from
one to the other, and the second server must never see the token (nor any request at all).
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pytest

from carbonpipe.intensity.chain import build_provider
from carbonpipe.intensity.errors import CrossOriginRedirect, ImplausibleValue
from carbonpipe.intensity.model import MAX_G_PER_KWH

from .conftest import FixtureServer, Reply

TOKEN = "s3cr3t-token-value"
LATEST = {"zone": "DE", "carbonIntensity": 300, "datetime": "2024-03-06T19:00:00.000Z",
          "updatedAt": "2024-03-06T19:30:00.000Z", "emissionFactorType": "lifecycle",
          "isEstimated": False}  # fmt: skip


def _em(server: FixtureServer, make_settings):
    s = make_settings(electricitymaps_base_url=server.url + "/v3", electricitymaps_token=TOKEN)
    return build_provider("electricitymaps", s)


def _json(body: object) -> Reply:
    return Reply(200, json.dumps(body).encode())


def test_redirect_to_another_origin_is_refused_and_the_token_never_arrives(
    server: FixtureServer, make_settings
) -> None:
    other = FixtureServer()  # another port: another origin
    try:
        other.route(r".*", _json(LATEST))
        server.route(
            r"/v3/carbon-intensity/latest",
            Reply(302, b"", {"Location": other.url + "/v3/carbon-intensity/latest"}),
        )
        with pytest.raises(CrossOriginRedirect) as err:
            _em(server, make_settings).current("DE")
        assert other.requests == []  # not even a request without the token
        assert err.value.provider == "electricitymaps" and TOKEN not in str(err.value)
        assert "base URL" in str(err.value)
    finally:
        other.close()


def test_redirect_within_the_configured_origin_is_followed_with_the_token(
    server: FixtureServer, make_settings
) -> None:
    server.route(
        r"/v3/carbon-intensity/latest", Reply(301, b"", {"Location": "/v3/moved/latest?zone=DE"})
    )
    server.route(r"/v3/moved/latest", _json(LATEST))
    p = _em(server, make_settings).current("DE")
    assert p.carbon_intensity_g_per_kwh == 300.0
    assert server.requests[-1].path == "/v3/moved/latest"
    assert server.requests[-1].headers.get("auth-token") == TOKEN


@pytest.mark.parametrize("value", [math.nan, -1.0, MAX_G_PER_KWH * 10, math.inf])
def test_electricitymaps_implausible_values_are_rejected_naming_the_provider(
    server: FixtureServer, make_settings, value: float
) -> None:
    # json.dumps writes NaN/Infinity, which Python's (and httpx's) JSON reader accepts
    server.route(r"/v3/carbon-intensity/latest", _json({**LATEST, "carbonIntensity": value}))
    with pytest.raises(ImplausibleValue) as err:
        _em(server, make_settings).current("DE")
    assert err.value.provider == "electricitymaps" and "not in [0, 2000]" in str(err.value)


def test_uk_negative_value_is_rejected(server: FixtureServer, make_settings) -> None:
    row = {"from": "2024-03-06T19:00Z", "to": "2024-03-06T19:30Z",
           "intensity": {"forecast": 120, "actual": -5, "index": "low"}}  # fmt: skip
    server.route(r"/intensity", _json({"data": [row]}))
    with pytest.raises(ImplausibleValue) as err:
        build_provider("uk", make_settings(uk_base_url=server.url)).current("GB")
    assert err.value.provider == "uk" and "-5.0 g/kWh" in str(err.value)


def test_watttime_absurd_value_is_rejected(server: FixtureServer, make_settings) -> None:
    server.route(r"/login", _json({"token": "wt-token"}))
    body = {"meta": {"units": "lbs_co2_per_mwh", "region": "CAISO_NORTH",
                     "data_point_period_seconds": 300},
            "data": [{"point_time": "2024-03-06T19:00:00+00:00", "value": 1e9}]}  # fmt: skip
    server.route(r"/v3/historical", _json(body))
    server.route(r"/v3/forecast", _json(body))
    s = make_settings(watttime_base_url=server.url, watttime_username="u",
                      watttime_password="p")  # fmt: skip
    p = build_provider(
        "watttime", s, clock=lambda: datetime(2024, 3, 6, 19, 10, tzinfo=timezone.utc)
    )
    with pytest.raises(ImplausibleValue) as err:
        p.current("US-CAL-CISO")
    assert err.value.provider == "watttime"


def test_the_chain_falls_through_an_implausible_value(server: FixtureServer, make_settings) -> None:
    """One bad answer must not stop the feed: the next provider (static) answers."""
    from carbonpipe.intensity.chain import build_chain

    server.route(r"/v3/carbon-intensity/latest", _json({**LATEST, "carbonIntensity": -3}))
    s = make_settings(electricitymaps_base_url=server.url + "/v3", electricitymaps_token=TOKEN,
                      providers="electricitymaps,static")  # fmt: skip
    point = build_chain(s).current("DE")
    assert point.provider == "static" and 0 <= point.carbon_intensity_g_per_kwh <= MAX_G_PER_KWH
