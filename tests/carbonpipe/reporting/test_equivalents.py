"""Equivalents, cost and PUE (pure), and the bundled tables they read."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonpipe.core.config import ConfigError, load_settings
from carbonpipe.core.resources import resource
from carbonpipe.reporting.equivalents import (
    Price,
    cost,
    equivalents,
    facility,
    load_equivalents,
    load_prices,
    price_for,
)


def test_bundled_tables_load_and_cite_their_sources() -> None:
    eq = {e.name: e for e in load_equivalents()}
    assert set(eq) == {"car_km", "smartphone_charges", "tree_months"}
    assert all(e.source == "EPA-GGEC" and e.g_co2e_per_unit > 0 for e in eq.values())
    header = resource("data/equivalents.csv").read_text()
    assert "EPA" in header and "404 g/mile" in header
    prices = load_prices(load_settings().electricity_prices_path)
    assert prices["US-CAL-CISO"].currency == "USD" and prices["IE"].year == 2024
    text = resource("data/electricity_prices.csv").read_text()
    assert all(f"[{p.source}]" in text for p in prices.values())  # every row's source cited


def test_every_listed_zone_is_costed_and_the_others_stay_unpriced() -> None:
    """Each zone of the shipped table costs kWh x its price in its currency; the zones the
    cloud regions map to that have no row (nor a country row) are reported unpriced."""
    import csv

    prices = load_prices(load_settings().electricity_prices_path)
    assert {"US-TEX-ERCO", "US-CAL-CISO", "IE", "FI"} <= set(prices)
    for zone, p in prices.items():
        want = {p.currency: pytest.approx(2.0 * p.price_per_kwh)}
        assert cost({zone: 2.0}, prices) == (want, {})
    lines = resource("data/cloud_regions.csv").read_text().splitlines()
    zones = {r["zone"] for r in csv.DictReader(x for x in lines if not x.startswith("#"))}
    unpriced = {z for z in zones if price_for(z, prices) is None}
    assert "US-MIDA-PJM" in unpriced and "IE" not in unpriced  # a multi-state operator
    per_currency, left = cost(dict.fromkeys(zones, 1.0), prices)
    assert set(left) == unpriced
    want_cost: dict[str, float] = {}
    for z in zones - unpriced:
        p = prices.get(z) or prices[z.split("-")[0]]
        want_cost[p.currency] = want_cost.get(p.currency, 0.0) + p.price_per_kwh
    assert per_currency == pytest.approx(want_cost)


def test_equivalents_divide_by_the_factor() -> None:
    eq = load_equivalents()
    got = equivalents(251.03 * 10, eq)
    assert got["car_km"] == pytest.approx(10) and got["tree_months"] == pytest.approx(5.0206)


def test_cost_per_currency_and_zones_without_a_price() -> None:
    prices = {"US-CA": Price("US-CA", 0.25, "USD", 2023, "x"),
              "DE": Price("DE", 0.2, "EUR", 2024, "y")}  # fmt: skip
    per_currency, unpriced = cost({"US-CA": 2.0, "DE-LU": 1.0, "XX": 3.0}, prices)
    assert per_currency == {"USD": pytest.approx(0.5), "EUR": pytest.approx(0.2)}
    assert unpriced == {"XX": 3.0}
    assert price_for("DE-LU", prices) is prices["DE"]


def test_pue_multiplies_and_is_range_checked() -> None:
    assert facility(10.0, 1.2) == pytest.approx(12.0)
    with pytest.raises(ValueError):
        facility(1.0, 0.9)


@pytest.mark.parametrize("bad", ["0.99", "3.5", "abc"])
def test_pue_setting_is_range_checked_and_named(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONPIPE_PUE", bad)
    with pytest.raises(ConfigError, match="CARBONPIPE_PUE"):
        load_settings()


def test_pue_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().pue == 1.0
    monkeypatch.setenv("CARBONPIPE_PUE", "1.4")
    assert load_settings().pue == 1.4


@pytest.mark.parametrize(("key", "bad"), [("CARBONPIPE_ALERT_WEBHOOK_RETRIES", "-1"),
                                          ("CARBONPIPE_ALERT_WEBHOOK_BACKOFF_S", "1000"),
                                          ("CARBONPIPE_ALERTS_INTERVAL_S", "0")])
def test_alert_settings_are_range_checked(key: str, bad: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(key, bad)
    with pytest.raises(ConfigError, match=key):
        load_settings()


def test_the_webhook_url_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "https://hooks.example/services/T000/B000/very-secret-path"
    monkeypatch.setenv("CARBONPIPE_ALERT_WEBHOOK_URL", secret)
    assert "very-secret" not in repr(load_settings())
    with pytest.raises(ConfigError) as err:
        load_settings(alert_webhook_url=[secret])
    assert "very-secret" not in str(err.value)


def test_a_price_table_override_is_read_and_checked(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "p.csv"
    table.write_text("# mine\nzone,price_per_kwh,currency,year,source\nGB,0.3,GBP,2025,contract\n")
    monkeypatch.setenv("CARBONPIPE_ELECTRICITY_PRICES_PATH", str(table))
    assert load_prices(load_settings().electricity_prices_path)["GB"].price_per_kwh == 0.3
    table.write_text("zone,price_per_kwh,currency,year,source\nGB,cheap,GBP,2025,x\n")
    with pytest.raises(ConfigError, match="ELECTRICITY_PRICES_PATH"):
        load_prices(table)
