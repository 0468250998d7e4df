"""Which grid zone this host is in: ``settings.zone``, else ``settings.cloud_region`` mapped
through ``data/cloud_regions.csv``. Never IP geolocation: location is configuration.

``default_zone`` is the forgiving variant for a first run: after the settings it reads the
region variables cloud platforms already set (no metadata HTTP call), then the configured
default (``CARBONPIPE_ALLOW_FALLBACK_ZONE``), then the cited world average, and says how it
chose, so a result computed on a guess is labelled as one.
"""

from __future__ import annotations

import csv
import difflib
import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from carbonpipe.core.config import Settings
from carbonpipe.core.resources import resource
from carbonpipe.intensity.errors import UnknownZone
from carbonpipe.intensity.static import ZONE_AVERAGES_PATH, load_zone_averages

CLOUD_REGIONS_PATH = resource("data/cloud_regions.csv")
EM_ZONES_PATH = resource("data/em_zones.json")
TRACE_ZONES = ("GB", "DE", "FR", "US-CAL-CISO")


@functools.lru_cache(maxsize=4)
def load_cloud_regions(path: Path = CLOUD_REGIONS_PATH) -> dict[str, str]:
    """``provider:region`` (lower case) -> zone."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(line for line in fh if line.strip() and not line.startswith("#"))
        return {r["cloud_region"].strip().lower(): r["zone"].strip().upper() for r in rows}


@functools.lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    """Zones carbonpipe can name: Electricity Maps' list, the static table and the traces."""
    zones = set(TRACE_ZONES) | set(load_zone_averages(ZONE_AVERAGES_PATH))
    if EM_ZONES_PATH.is_file():
        zones |= {z.upper() for z in json.loads(EM_ZONES_PATH.read_text(encoding="utf-8"))}
    return frozenset(zones)


@functools.lru_cache(maxsize=1)
def em_zone_names() -> dict[str, str]:
    """Electricity Maps zone id -> "Zone name (Country)" from data/em_zones.json."""
    if not EM_ZONES_PATH.is_file():
        return {}
    raw = json.loads(EM_ZONES_PATH.read_text(encoding="utf-8"))
    return {
        z.upper(): v.get("zoneName", "")
        + (f" ({v['countryName']})" if v.get("countryName") else "")
        for z, v in raw.items()
    }


def _listing(names: frozenset[str] | set[str], limit: int = 60) -> str:
    names_sorted = sorted(names)
    more = len(names_sorted) - limit
    return ", ".join(names_sorted[:limit]) + (f", ... ({more} more)" if more > 0 else "")


def zone_for_cloud_region(cloud_region: str) -> str:
    """``aws:eu-west-1`` -> ``IE``; UnknownZone listing the known regions otherwise."""
    regions = load_cloud_regions()
    key = cloud_region.strip().lower()
    if key not in regions:
        raise UnknownZone(
            f"unknown cloud region {cloud_region!r} (form provider:region); "
            f"known: {_listing(set(regions), 200)}"
        )
    return regions[key]


def check_zone(zone: str, allow_fallback_zone: str | None = None) -> str:
    """Upper-cased zone if known; else ``allow_fallback_zone``; else UnknownZone (lists them)."""
    z = zone.strip().upper()
    if z in known_zones():
        return z
    if allow_fallback_zone:
        return allow_fallback_zone.strip().upper()
    local = set(TRACE_ZONES) | set(load_zone_averages(ZONE_AVERAGES_PATH))
    close = difflib.get_close_matches(z, sorted(known_zones()), n=5, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownZone(
        f"unknown zone {zone!r}.{hint} Zone ids are Electricity Maps' (e.g. GB, DE, JP-TK, "
        f"US-CAL-CISO): {len(local)} have local data, {len(known_zones())} in total; list "
        "them with `carbonpipe zones --search TEXT`. Set CARBONPIPE_ALLOW_FALLBACK_ZONE to "
        "use a fallback zone instead."
    )


def resolve_zone(settings: Settings, zone: str | None = None) -> str:
    """The zone to use: explicit ``zone``, ``settings.zone``, then ``settings.cloud_region``."""
    fallback = settings.allow_fallback_zone
    if zone:
        return check_zone(zone, fallback)
    if settings.zone:
        return check_zone(settings.zone, fallback)
    if settings.cloud_region:
        try:
            return check_zone(zone_for_cloud_region(settings.cloud_region), fallback)
        except UnknownZone:
            if fallback:
                return fallback.strip().upper()
            raise
    if fallback:
        return fallback.strip().upper()
    raise UnknownZone(
        "no zone configured: set CARBONPIPE_ZONE (e.g. GB, DE, US-CAL-CISO) or "
        "CARBONPIPE_CLOUD_REGION (e.g. aws:eu-west-1, gcp:europe-west1, "
        "azure:westeurope)"
    )


# Region variables a cloud runtime or its SDK configuration may already hold, in the order they
# are trusted, with the provider prefix of data/cloud_regions.csv: AWS_REGION (set by AWS Lambda,
# read by every AWS SDK) and AWS_DEFAULT_REGION (AWS CLI/SDK configuration); GOOGLE_CLOUD_REGION
# and CLOUD_ML_REGION (Google tooling conventions); REGION_NAME (Azure App Service, a display
# name such as "West Europe", normalised to westeurope). Reading them costs nothing and never
# leaves the host; the instance metadata endpoints (HTTP) are deliberately not used. Which
# runtimes set which variable was not verified here: a variable that is absent changes nothing.
CLOUD_REGION_ENV = (
    ("AWS_REGION", "aws"),
    ("AWS_DEFAULT_REGION", "aws"),
    ("GOOGLE_CLOUD_REGION", "gcp"),
    ("CLOUD_ML_REGION", "gcp"),
    ("REGION_NAME", "azure"),
)
WORLD = "WORLD"
# How ZoneChoice.zone was chosen; the last three are guesses and are flagged.
HOW_EXPLICIT = ("flag", "setting", "cloud_region_setting")
HOW_GUESSED = ("cloud_env", "fallback_setting", "world_average")


@dataclass(frozen=True, slots=True)
class ZoneChoice:
    """The zone a run uses, how it was chosen (one of HOW_EXPLICIT + HOW_GUESSED) and the line
    to show the user ("" when the user named the zone)."""

    zone: str
    how: str
    message: str

    @property
    def flagged(self) -> bool:
        """True when the zone is a guess the user should confirm (not configured by them)."""
        return self.how in HOW_GUESSED


def cloud_region_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``aws:eu-west-1`` from the first region variable in CLOUD_REGION_ENV that is set."""
    env = os.environ if environ is None else environ
    for var, provider in CLOUD_REGION_ENV:
        value = env.get(var, "").strip()
        if value:
            region = value.lower().replace(" ", "") if provider == "azure" else value.lower()
            return f"{provider}:{region}"
    return None


def default_zone(
    settings: Settings, zone: str | None = None, environ: Mapping[str, str] | None = None
) -> ZoneChoice:
    """The zone for a run that must not fail for want of one (``carbonpipe collect``).

    Order: ``zone`` (the flag), ``CARBONPIPE_ZONE``, ``CARBONPIPE_CLOUD_REGION`` (all three
    explicit, so an unknown value still raises UnknownZone as ``resolve_zone`` does); then the
    cloud runtime's own region variable (CLOUD_REGION_ENV) when data/cloud_regions.csv maps it;
    then ``CARBONPIPE_ALLOW_FALLBACK_ZONE``; then WORLD, the cited world average of
    data/zone_averages.csv. Pure apart from reading ``environ`` (default ``os.environ``).
    """
    if zone or settings.zone or settings.cloud_region:
        how = "flag" if zone else "setting" if settings.zone else "cloud_region_setting"
        return ZoneChoice(resolve_zone(settings, zone), how, "")
    notes = []
    region = cloud_region_from_env(environ)
    if region:
        found = load_cloud_regions().get(region)
        if found:
            return ZoneChoice(
                found,
                "cloud_env",
                f"zone {found} from the cloud region {region} this host reports; set "
                "CARBONPIPE_ZONE (or --zone) to confirm or correct it",
            )
        notes.append(f"cloud region {region} is not in data/cloud_regions.csv")
    if settings.allow_fallback_zone:
        fb = settings.allow_fallback_zone.strip().upper()
        return ZoneChoice(
            fb,
            "fallback_setting",
            f"no zone configured{': ' + '; '.join(notes) if notes else ''}; using "
            f"CARBONPIPE_ALLOW_FALLBACK_ZONE={fb}. Set CARBONPIPE_ZONE (or --zone) for this grid",
        )
    world = load_zone_averages(settings.zone_averages_path).get(WORLD)
    cited = (
        f"{world.carbon_intensity_g_per_kwh:g} gCO2eq/kWh, {world.year}, {world.source}"
        if world
        else "no WORLD row in CARBONPIPE_ZONE_AVERAGES_PATH"
    )
    return ZoneChoice(
        WORLD,
        "world_average",
        f"no zone configured{': ' + '; '.join(notes) if notes else ''}; using the world average "
        f"({cited}), labelled fallback. Set CARBONPIPE_ZONE (e.g. GB, DE, US-CAL-CISO) or "
        "CARBONPIPE_CLOUD_REGION (e.g. aws:eu-west-1); `carbonpipe zones --search TEXT` lists "
        "the zone ids",
    )


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    """One line of ``carbonpipe zones``: what carbonpipe knows about a zone and who answers."""

    zone: str
    name: str
    carbon_intensity_g_per_kwh: float | None  # the static provider's annual average
    year: int | None
    method: str
    source: str  # the static row's source; "country average XX" when borrowed
    providers: tuple[str, ...]


def zone_catalogue(
    zone_averages: Path,
    trace_zones: set[str],
    provider_zones: Mapping[str, set[str] | None],
) -> list[ZoneInfo]:
    """Every zone with local data or an Electricity Maps id, sorted, with its providers.

    ``provider_zones``: provider name -> the zones it serves, or None for "all Electricity Maps
    ids" (the electricitymaps provider). The static provider serves a zone with its own row or
    its country's (the same rule as ``StaticProvider.lookup``); the trace provider the zones of
    ``trace_zones`` (from the trace files found). Pure: the caller gathers the inputs.
    """
    table = load_zone_averages(zone_averages)
    em = em_zone_names()
    out = []
    for z in sorted(set(table) | set(em) | trace_zones):
        avg = table.get(z) or table.get(z.split("-")[0])
        providers = ["static"] if avg else []
        if z in trace_zones:
            providers.append("trace")
        for name, zones in provider_zones.items():
            if (z in em) if zones is None else (z in zones):
                providers.append(name)
        borrowed = avg is not None and avg.zone != z
        out.append(
            ZoneInfo(
                zone=z,
                name=(table[z].name if z in table and table[z].name else em.get(z, "")),
                carbon_intensity_g_per_kwh=avg.carbon_intensity_g_per_kwh if avg else None,
                year=avg.year if avg else None,
                method=avg.method if avg else "",
                source=(f"country average {avg.zone}: " if avg and borrowed else "")
                + (avg.source if avg else ""),
                providers=tuple(providers),
            )
        )
    return out
