"""Energy and CO2e in terms people use: facility figures (PUE), cost, everyday equivalents.

Pure: the tables are read by ``load_prices``/``load_equivalents`` (cited CSV files in
``data/``) and passed in; nothing here reads the environment or the network.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from carbonpipe.core.errors import ConfigError
from carbonpipe.core.resources import resource


@dataclass(frozen=True)
class Price:
    zone: str
    price_per_kwh: float
    currency: str
    year: int
    source: str


@dataclass(frozen=True)
class Equivalent:
    name: str
    g_co2e_per_unit: float
    unit: str
    source: str


def _rows(path: Path, key: str) -> list[dict[str, str]]:
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]  # fmt: skip
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from None
    return list(csv.DictReader(lines))


def load_prices(path: Path) -> dict[str, Price]:
    """zone -> price, from a table like ``data/electricity_prices.csv``."""
    out: dict[str, Price] = {}
    for n, r in enumerate(_rows(path, "CARBONPIPE_ELECTRICITY_PRICES_PATH"), 1):
        try:
            p = Price(r["zone"].strip(), float(r["price_per_kwh"]), r["currency"].strip(),
                      int(r["year"]), r.get("source", "").strip())  # fmt: skip
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"CARBONPIPE_ELECTRICITY_PRICES_PATH: {path} row {n} is not "
                              "zone,price_per_kwh,currency,year,source") from None  # fmt: skip
        if not p.price_per_kwh >= 0:
            raise ConfigError(f"CARBONPIPE_ELECTRICITY_PRICES_PATH: {path} row {n}: "
                              "a price is >= 0")  # fmt: skip
        out[p.zone] = p
    return out


def load_equivalents(path: Path | None = None) -> tuple[Equivalent, ...]:
    """The everyday equivalents (bundled ``data/equivalents.csv`` unless ``path``)."""
    path = path or resource("data/equivalents.csv")
    return tuple(Equivalent(r["name"], float(r["g_co2e_per_unit"]), r["unit"], r["source"])
                 for r in _rows(path, str(path)))  # fmt: skip


def citations(*paths: Path) -> dict[str, str]:
    """``[KEY] text`` citations from the tables' comment headers (continuation lines are
    indented), so a report names each source in full without a second copy of it."""
    out: dict[str, str] = {}
    for path in paths:
        key = None
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            body = line[1:].strip()
            if body.startswith("[") and "]" in body:
                key, _, text = body[1:].partition("]")
                out[key] = text.strip()
            elif key and line.startswith("#   "):
                out[key] += " " + body
            else:
                key = None
    return out


def facility(value: float, pue: float) -> float:
    """IT energy or CO2e -> the data centre's (cooling, power conversion): x PUE."""
    if not 1.0 <= pue <= 3.0:
        raise ValueError(f"PUE {pue} outside 1.0..3.0")
    return value * pue


def equivalents(co2_g: float, table: Iterable[Equivalent]) -> dict[str, float]:
    """gCO2e -> {name: amount} (km driven, smartphone charges, tree-months)."""
    return {e.name: co2_g / e.g_co2e_per_unit for e in table}


def price_for(zone: str, prices: Mapping[str, Price]) -> Price | None:
    """The zone's price, else its country's (``DE-LU`` -> ``DE``); None: no cost is shown."""
    return prices.get(zone) or prices.get(zone.split("-")[0])


def cost(kwh_by_zone: Mapping[str, float], prices: Mapping[str, Price]
         ) -> tuple[dict[str, float], dict[str, float]]:
    """(cost per currency, kWh without a price) for energy per zone. Currencies are never
    added together (no exchange rate is assumed)."""
    per_currency: dict[str, float] = {}
    unpriced: dict[str, float] = {}
    for zone, kwh in kwh_by_zone.items():
        p = price_for(zone, prices)
        if p is None:
            unpriced[zone] = unpriced.get(zone, 0.0) + kwh
        else:
            per_currency[p.currency] = per_currency.get(p.currency, 0.0) + kwh * p.price_per_kwh
    return per_currency, unpriced
