"""Runs in CodeCarbon's ``emissions.csv`` layout, so CodeCarbon's own tooling reads them.

Columns: CodeCarbon 2.x's ``EmissionsData`` (``codecarbon/output_methods/emissions_data.py``,
mlco2/codecarbon, the layout of releases 2.4 to 2.8; 3.0 appends utilisation and water
columns after ``emissions_rate``/``energy_consumed``, which readers by name do not need).
Units as CodeCarbon's: emissions in kg CO2e, energy in kWh, duration in s, power in W,
``emissions_rate`` in kg/s. One row per run; ``project_name`` is the run's ``project`` tag
(else its model), ``experiment_id`` its model. Figures carbonpipe does not have (location,
python version, GPU model) are left empty. PUE: the rows carry the configured PUE and
facility figures, as CodeCarbon does with its ``pue`` parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

COLUMNS = (
    "timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions",
    "emissions_rate", "cpu_power", "gpu_power", "ram_power", "cpu_energy", "gpu_energy",
    "ram_energy", "energy_consumed", "country_name", "country_iso_code", "region",
    "cloud_provider", "cloud_region", "os", "python_version", "codecarbon_version", "cpu_count",
    "cpu_model", "gpu_count", "gpu_model", "longitude", "latitude", "ram_total_size",
    "tracking_mode", "on_cloud", "pue",
)  # fmt: skip
KWH_TO_J = 3.6e6


def row(run: Mapping[str, Any], pue: float, version: str) -> dict[str, Any]:
    """One run as one ``emissions.csv`` row (``timestamp``: the run's end, as CodeCarbon
    writes it when the tracker stops; else its start)."""
    dur = float(run.get("duration_s") or 0.0)
    kg = float(run.get("co2_g") or 0.0) * pue / 1000.0

    def kwh(name: str) -> float:
        return float(run.get(name) or 0.0) * pue

    def watts(name: str) -> float:
        return kwh(name) * KWH_TO_J / dur if dur > 0 else 0.0

    when = run.get("end") or run.get("start")
    zones = run.get("zones") or []
    tags = run.get("tags") or {}
    return {
        "timestamp": when.astimezone(timezone.utc).isoformat(timespec="seconds")
        if isinstance(when, datetime) else "",
        "project_name": str(tags.get("project") or run.get("model_name") or ""),
        "run_id": str(run.get("run_id") or ""),
        "experiment_id": str(run.get("model_name") or ""),
        "duration": dur, "emissions": kg, "emissions_rate": kg / dur if dur > 0 else 0.0,
        "cpu_power": watts("cpu_kwh"), "gpu_power": watts("gpu_kwh"),
        "ram_power": watts("ram_kwh"),
        "cpu_energy": kwh("cpu_kwh"), "gpu_energy": kwh("gpu_kwh"), "ram_energy": kwh("ram_kwh"),
        "energy_consumed": kwh("energy_kwh"),
        "country_name": "", "country_iso_code": "",
        "region": "+".join(str(z) for z in zones),
        "cloud_provider": "", "cloud_region": "",
        "os": str(run.get("os") or ""), "python_version": "",
        "codecarbon_version": f"carbonpipe {version}",
        "cpu_count": run.get("cpu_count") or "", "cpu_model": str(run.get("cpu_name") or ""),
        "gpu_count": "", "gpu_model": "", "longitude": "", "latitude": "",
        "ram_total_size": (float(run["ram_total_mb"]) / 1024.0) if run.get("ram_total_mb")
        else "",
        "tracking_mode": "machine", "on_cloud": "N", "pue": pue,
    }  # fmt: skip
