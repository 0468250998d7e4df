"""Static fallback table, cloud-region mapping, zone validation."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone

import pytest

from carbonpipe.core.config import REPO_ROOT
from carbonpipe.intensity.errors import NotCovered, UnknownZone
from carbonpipe.intensity.static import ZONE_AVERAGES_PATH, StaticProvider, load_zone_averages
from carbonpipe.intensity.zones import (
    check_zone,
    known_zones,
    load_cloud_regions,
    resolve_zone,
    zone_for_cloud_region,
)

UTC = timezone.utc
REQUIRED = (
    "GB",
    "DE",
    "FR",
    "US-CAL-CISO",
    "NL",
    "BE",
    "ES",
    "IT",
    "PL",
    "SE",
    "NO",
    "DK",
    "IE",
    "AT",
    "CH",
    "US",
    "WORLD",
)


def test_zone_averages_file_has_the_spark_column_set_and_cites_sources() -> None:
    lines = ZONE_AVERAGES_PATH.read_text(encoding="utf-8").splitlines()
    comments = [x for x in lines if x.startswith("#")]
    data = [x for x in lines if x and not x.startswith("#")]
    assert data[0] == "zone,carbon_intensity_g_per_kwh,year,source"
    rows = list(csv.DictReader(data))
    tags = {r["source"].split()[0] for r in rows}
    for tag in tags:  # every source tag is explained in the header comments
        assert any(f"[{tag}]" in c for c in comments), tag
    table = load_zone_averages()
    for z in REQUIRED:
        assert z in table and 0 < table[z].carbon_intensity_g_per_kwh < 1200
        assert 2015 <= table[z].year <= 2025


def test_static_provider_is_labelled_fallback_with_source_and_year() -> None:
    now = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    p = StaticProvider(clock=lambda: now)
    cur = p.current("de")
    assert (cur.zone, cur.carbon_intensity_g_per_kwh, cur.kind, cur.provider) == (
        "DE",
        379.0,
        "fallback",
        "static",
    )
    assert "2020" in cur.source and "carbonfootprint" in cur.source
    assert cur.start == datetime(2026, 1, 2, 3, tzinfo=UTC)
    (fc,) = p.forecast("DE", timedelta(hours=24))
    assert fc.end == now + timedelta(hours=24)
    sub = p.current("DK-DK2")
    assert sub.carbon_intensity_g_per_kwh == 154.0 and "country average DK" in sub.source
    with pytest.raises(NotCovered, match="WORLD"):
        p.current("ATLANTIS")


def test_cloud_regions_map_to_known_zones_with_sources() -> None:
    text = (REPO_ROOT / "data" / "cloud_regions.csv").read_text(encoding="utf-8")
    assert "electricitymaps" in text.lower() and "cloudcarbonfootprint" in text.lower()
    regions = load_cloud_regions()
    assert all(z in known_zones() for z in regions.values())
    assert zone_for_cloud_region("aws:eu-west-1") == "IE"
    assert zone_for_cloud_region("GCP:europe-west1") == "BE"
    assert zone_for_cloud_region("azure:westeurope") == "NL"
    with pytest.raises(UnknownZone, match="aws:eu-west-1"):
        zone_for_cloud_region("aws:mars-north-1")


def test_resolve_zone_order_and_fallback(make_settings) -> None:
    assert resolve_zone(make_settings(zone="gb", cloud_region="aws:eu-west-1")) == "GB"
    assert resolve_zone(make_settings(cloud_region="aws:eu-central-1")) == "DE"
    assert resolve_zone(make_settings(), "us-cal-ciso") == "US-CAL-CISO"
    with pytest.raises(UnknownZone) as err:
        resolve_zone(make_settings(zone="NOT-A-ZONE"))
    assert "GB" in str(err.value) and "CARBONPIPE_ALLOW_FALLBACK_ZONE" in str(err.value)
    assert resolve_zone(make_settings(zone="NOT-A-ZONE", allow_fallback_zone="world")) == "WORLD"
    assert (
        resolve_zone(make_settings(cloud_region="aws:nowhere-1", allow_fallback_zone="DE")) == "DE"
    )
    with pytest.raises(UnknownZone, match="CARBONPIPE_ZONE"):
        resolve_zone(make_settings())


def test_em_zone_list_is_shipped_with_attribution() -> None:
    assert len(known_zones()) >= 400
    readme = (REPO_ROOT / "data" / "em_zones.README.md").read_text(encoding="utf-8")
    assert "MIT License" in readme and "Jan-Philipp Benecke" in readme
    assert check_zone("se-se3") == "SE-SE3"
