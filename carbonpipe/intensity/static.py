"""Static per-zone annual averages (``data/zone_averages.csv``): the honest last resort.

Values are labelled ``kind="fallback"`` and carry their source and year, so nobody mistakes an
annual average for a measurement. The Spark job reads the same file as its fallback table.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from carbonpipe.core.resources import resource
from carbonpipe.core.timeutil import floor_time
from carbonpipe.intensity.base import Clock, require_aware, utcnow
from carbonpipe.intensity.errors import NotCovered
from carbonpipe.intensity.model import IntensityPoint

NAME = "static"
ZONE_AVERAGES_PATH = resource("data/zone_averages.csv")
COLUMNS = ("zone", "carbon_intensity_g_per_kwh", "year", "source")
# Added with the world table; optional so that a user's own 4-column table keeps working.
OPTIONAL_COLUMNS = ("method", "name")
METHODS = ("life-cycle", "direct", "derived-mix", "unstated")  # explained in the file header


@dataclass(frozen=True, slots=True)
class ZoneAverage:
    zone: str
    carbon_intensity_g_per_kwh: float
    year: int
    source: str
    method: str = "unstated"  # one of METHODS
    name: str = ""  # human name of the zone ("Japan", "Texas")


@functools.lru_cache(maxsize=8)
def load_zone_averages(path: Path = ZONE_AVERAGES_PATH) -> dict[str, ZoneAverage]:
    """The fallback table, keyed by upper-case zone (lines starting with ``#`` are comments).

    The one loader of this table: the static provider, ``carbonpipe zones`` and the Spark job's
    fallback all read it here, so they cannot disagree about a zone.
    """
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(line for line in fh if line.strip() and not line.startswith("#"))
        cols = tuple(reader.fieldnames or ())
        if cols[: len(COLUMNS)] != COLUMNS or not set(cols[len(COLUMNS) :]) <= set(
            OPTIONAL_COLUMNS
        ):
            raise ValueError(
                f"{path}: columns must be {','.join(COLUMNS)}[,{','.join(OPTIONAL_COLUMNS)}], "
                f"got {reader.fieldnames}"
            )
        table: dict[str, ZoneAverage] = {}
        for r in reader:
            zone = r["zone"].strip().upper()
            method = (r.get("method") or "unstated").strip()
            if zone in table or method not in METHODS:
                raise ValueError(
                    f"{path}: zone {zone}: "
                    + ("listed twice (one row per zone)" if zone in table
                       else f"method {method!r} is not one of {', '.join(METHODS)}")
                )  # fmt: skip
            table[zone] = ZoneAverage(
                zone,
                float(r["carbon_intensity_g_per_kwh"]),
                int(r["year"]),
                r["source"],
                method,
                (r.get("name") or "").strip(),
            )
        return table


class StaticProvider:
    """Annual average of the zone, or of its country for a sub-zone (DK-DK2 -> DK)."""

    name = NAME

    def __init__(self, path: Path = ZONE_AVERAGES_PATH, clock: Clock = utcnow) -> None:
        self.table = load_zone_averages(path)
        self.path = path
        self.clock = clock

    def lookup(self, zone: str) -> tuple[ZoneAverage, str]:
        z = zone.upper()
        if z in self.table:
            return self.table[z], ""
        country = z.split("-")[0]
        if country in self.table:
            return self.table[country], f" (country average {country} for {z})"
        raise NotCovered(
            NAME,
            f"no annual average for zone {zone} in {self.path.name}; "
            f"known: {', '.join(sorted(self.table))}",
        )

    def _point(self, zone: str, start: datetime, end: datetime) -> IntensityPoint:
        avg, note = self.lookup(zone)
        return IntensityPoint(
            zone=zone.upper(),
            start=start,
            end=end,
            carbon_intensity_g_per_kwh=avg.carbon_intensity_g_per_kwh,
            provider=NAME,
            kind="fallback",
            signal="average",
            source=(
                f"{self.path.name}: {avg.year} annual average ({avg.method}), {avg.source}{note}"
            ),
        )

    def current(self, zone: str) -> IntensityPoint:
        start = floor_time(self.clock(), timedelta(hours=1))
        return self._point(zone, start, start + timedelta(hours=1))

    def history(self, zone: str, start: datetime, end: datetime) -> list[IntensityPoint]:
        return [self._point(zone, require_aware(start, "start"), require_aware(end, "end"))]

    def forecast(self, zone: str, horizon: timedelta) -> list[IntensityPoint]:
        start = floor_time(self.clock(), timedelta(hours=1))
        return [self._point(zone, start, self.clock() + horizon)]
