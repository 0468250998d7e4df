"""Running totals of one run's events: joules per device, gCO2e, and the intensity used. Pure.

Every exporter (Prometheus, MLflow, W&B) shows the same figures, so they are added up once,
here, from the events exactly as published: the energies are the run's share per interval
(``cpu_energy_j`` is the process tree's share of the package, not the whole host).

gCO2e needs an intensity. The collector knows only what the host saw: the event's
``grid_carbon_intensity_g_per_kwh`` when it carries one (with ``grid_intensity_provider`` /
``grid_intensity_kind`` if present), else the zone's annual average from the project's static
table (``data/zone_averages.csv`` through ``carbonpipe.intensity.static``; it cites its sources
in its header), labelled ``provider="static", kind="fallback"``. The streaming job later joins
the provider's value for the hour; these live figures are the host's view, and say which.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from carbonpipe.core.units import DEVICES, J_PER_KWH
from carbonpipe.intensity.errors import NotCovered
from carbonpipe.intensity.static import StaticProvider


@dataclass(frozen=True)
class Intensity:
    """gCO2e per kWh and where it came from (``provider``, ``kind`` as in the intensity chain)."""

    g_per_kwh: float
    provider: str
    kind: str


IntensityLookup = Callable[[Mapping[str, Any]], "Intensity | None"]


class StaticFallback:
    """The event's own intensity, else the zone's annual average; None when neither exists."""

    def __init__(self, provider: StaticProvider | None = None) -> None:
        self._provider = provider
        self._cache: dict[str, Intensity | None] = {}

    def __call__(self, event: Mapping[str, Any]) -> Intensity | None:
        value = event.get("grid_carbon_intensity_g_per_kwh")
        if isinstance(value, int | float) and value >= 0:
            return Intensity(
                float(value),
                str(event.get("grid_intensity_provider") or "host"),
                str(event.get("grid_intensity_kind") or "reported"),
            )
        zone = str(event.get("region") or event.get("region_iso") or "")
        if zone not in self._cache:
            self._cache[zone] = self._static(zone)
        return self._cache[zone]

    def _static(self, zone: str) -> Intensity | None:
        if self._provider is None:
            self._provider = StaticProvider()
        try:
            avg, _ = self._provider.lookup(zone)
        except NotCovered as exc:
            print(f"carbonpipe exporters: no gCO2e for zone {zone!r}: {exc}", file=sys.stderr)
            return None
        return Intensity(avg.carbon_intensity_g_per_kwh, "static", "fallback")


def device_joules(event: Mapping[str, Any]) -> dict[str, tuple[float, str]]:
    """``{device: (joules, method)}`` of one event; a device the event lacks is absent."""
    out: dict[str, tuple[float, str]] = {}
    for dev in DEVICES:
        j = event.get(f"{dev}_energy_j")
        if isinstance(j, int | float):
            out[dev] = (max(0.0, float(j)), str(event.get(f"{dev}_method") or "estimated"))
    return out


@dataclass
class RunTotals:
    """Sums over the events seen so far; ``add`` returns this event's gCO2e (None: unknown)."""

    intensity_of: IntensityLookup = field(default_factory=StaticFallback)
    energy_j: dict[str, float] = field(default_factory=dict)
    method: dict[str, str] = field(default_factory=dict)
    power_w: dict[str, float] = field(default_factory=dict)
    emissions_g: float = 0.0
    unpriced_j: float = 0.0  # energy of events with no intensity (zone not in the table)
    intensity: Intensity | None = None
    events: int = 0
    epoch: int | None = None
    seq: int | None = None

    def add(self, event: Mapping[str, Any]) -> float | None:
        self.events += 1
        if isinstance(event.get("epoch"), int):
            self.epoch = event["epoch"]
        if isinstance(event.get("seq"), int):
            self.seq = event["seq"]
        joules = 0.0
        for dev, (j, method) in device_joules(event).items():
            self.energy_j[dev] = self.energy_j.get(dev, 0.0) + j
            self.method[dev] = method
            power = event.get(f"{dev}_power_w")
            if isinstance(power, int | float):
                self.power_w[dev] = float(power)
            joules += j
        self.intensity = self.intensity_of(event)
        if self.intensity is None:
            self.unpriced_j += joules
            return None
        grams = joules / J_PER_KWH * self.intensity.g_per_kwh
        self.emissions_g += grams
        return grams

    @property
    def energy_kwh(self) -> dict[str, float]:
        return {dev: j / J_PER_KWH for dev, j in self.energy_j.items()}

    @property
    def total_kwh(self) -> float:
        return sum(self.energy_j.values()) / J_PER_KWH
