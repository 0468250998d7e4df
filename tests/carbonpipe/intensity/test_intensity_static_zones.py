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
    assert data[0] == "zone,carbon_intensity_g_per_kwh,year,source,method,name"
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


def test_world_table_covers_countries_and_sub_national_grids_with_year_and_method() -> None:
    table = load_zone_averages()
    countries = [z for z in table if len(z) == 2]
    assert len(countries) >= 200
    for z in ("JP", "IN", "AU", "BR", "KR", "US-TX", "US-CA", "CN-BJ", "CA-QC"):
        row = table[z]
        assert row.name and row.method in ("life-cycle", "direct", "derived-mix", "unstated")
        assert 0 < row.carbon_intensity_g_per_kwh < 1500 and 2009 <= row.year <= 2025
    assert table["US-TX"].method == "direct" and "EGRID2023" in table["US-TX"].source
    # curated rows win over generated ones, and every zone has exactly one row
    assert table["DE"].source.startswith("CF2020")


def test_zone_averages_loader_rejects_duplicates_and_unknown_methods(tmp_path) -> None:
    head = "zone,carbon_intensity_g_per_kwh,year,source,method,name\n"
    dup = tmp_path / "dup.csv"
    dup.write_text(head + "GB,1,2020,X,direct,a\ngb,2,2020,X,direct,b\n")
    with pytest.raises(ValueError, match="GB: listed twice"):
        load_zone_averages(dup)
    bad = tmp_path / "bad.csv"
    bad.write_text(head + "GB,1,2020,X,guessed,a\n")
    with pytest.raises(ValueError, match="'guessed' is not one of"):
        load_zone_averages(bad)
    old = tmp_path / "old.csv"  # a user's own four-column table still loads
    old.write_text("zone,carbon_intensity_g_per_kwh,year,source\nXX,100,2021,mine\n")
    assert load_zone_averages(old)["XX"].method == "unstated"


def test_static_provider_answers_a_sub_zone_from_its_country_and_names_the_method() -> None:
    p = StaticProvider(clock=lambda: datetime(2026, 1, 2, tzinfo=UTC))
    cur = p.current("JP-TK")
    assert cur.carbon_intensity_g_per_kwh == load_zone_averages()["JP"].carbon_intensity_g_per_kwh
    assert "country average JP" in cur.source and "(life-cycle)" in cur.source


def test_default_zone_order_explicit_then_cloud_env_then_fallback_then_world(
    make_settings,
) -> None:
    from carbonpipe.intensity.zones import ZoneChoice, default_zone

    assert default_zone(make_settings(), "gb", environ={}) == ZoneChoice("GB", "flag", "")
    got = default_zone(make_settings(zone="DE"), environ={"AWS_REGION": "eu-west-1"})
    assert (got.zone, got.how, got.flagged) == ("DE", "setting", False)
    with pytest.raises(UnknownZone):  # a configured zone that is wrong is still an error
        default_zone(make_settings(zone="NOT-A-ZONE"), environ={})
    env = default_zone(make_settings(), environ={"AWS_REGION": "eu-west-1"})
    assert (env.zone, env.how, env.flagged) == ("IE", "cloud_env", True)
    assert "aws:eu-west-1" in env.message and "CARBONPIPE_ZONE" in env.message
    az = default_zone(make_settings(), environ={"REGION_NAME": "West Europe"})
    assert az.zone == "NL"
    fb = default_zone(make_settings(allow_fallback_zone="fr"), environ={"AWS_REGION": "mars-1"})
    assert (fb.zone, fb.how) == ("FR", "fallback_setting")
    assert "aws:mars-1 is not in data/cloud_regions.csv" in fb.message
    world = default_zone(make_settings(), environ={})
    assert (world.zone, world.how, world.flagged) == ("WORLD", "world_average", True)
    assert "436" in world.message and "EMBER2022" in world.message
    assert "CARBONPIPE_ZONE" in world.message and "carbonpipe zones" in world.message
    assert check_zone(world.zone) == "WORLD"  # the chain's static provider can answer it


def test_zones_command_lists_coverage(capsys) -> None:
    import json

    from carbonpipe.cli import main

    assert main(["zones", "--search", "tōkyō", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["zone"] == "JP-TK" and row["providers"] == ["static", "electricitymaps"]
    assert row["source"].startswith("country average JP")
    assert main(["zones", "--search", "GB"]) == 0
    gb = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("GB "))
    assert "static" in gb and "uk" in gb and "electricitymaps" in gb
    assert main(["zones", "--search", "no-such-place"]) == 1
