"""Expected figures, computed from a run's events exactly as published."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from carbonpipe.core.units import J_PER_KWH
from carbonpipe.intensity.static import load_zone_averages

RunFn = Callable[..., list[dict[str, Any]]]


def event_joules(events: list[dict[str, Any]]) -> dict[str, float]:
    return {
        dev: sum(e.get(f"{dev}_energy_j", 0.0) for e in events)
        for dev in ("cpu", "gpu", "ram")
        if any(f"{dev}_energy_j" in e for e in events)
    }


def gb_intensity() -> float:
    """GB's annual average in the project's table (data/zone_averages.csv cites its source)."""
    return load_zone_averages()["GB"].carbon_intensity_g_per_kwh


def expected_grams(events: list[dict[str, Any]]) -> float:
    return sum(event_joules(events).values()) / J_PER_KWH * gb_intensity()
