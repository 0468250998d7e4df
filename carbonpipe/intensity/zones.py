"""Which grid zone this host is in: ``settings.zone``, else ``settings.cloud_region`` mapped
through ``data/cloud_regions.csv``. Never IP geolocation: location is configuration.
"""

from __future__ import annotations

import csv
import difflib
import functools
import json
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
        f"unknown zone {zone!r}.{hint} Zones with local data: {_listing(local)}; "
        f"{len(known_zones())} zone ids in total (data/em_zones.json). Set "
        "CARBONPIPE_ALLOW_FALLBACK_ZONE to use a fallback zone instead."
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
