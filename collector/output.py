"""What a run leaves behind without the stack: a CodeCarbon-style CSV row, a JSON summary, an
events file. ``codecarbon_row`` is pure; the writers and observers below are the I/O edges.

CSV layout: CodeCarbon's ``emissions.csv``, so tools and notebooks written for it read
carbonpipe's rows. Column names, order and units are those of ``EmissionsData`` in
codecarbon 3.3.2 (``codecarbon/output_methods/emissions_data.py``; units from
``EmissionsTracker._prepare_emissions_data`` in ``codecarbon/emissions_tracker.py``:
``emissions`` kg, ``emissions_rate`` kg/s, ``*_energy``/``energy_consumed`` kWh, ``*_power`` W,
``duration`` s, ``water_consumed`` L, ``ram_total_size`` and ``ram_used_gb`` GB).

How carbonpipe fills them (see ``codecarbon_row``; README "carbonpipe collect"):

- ``run_id``, ``duration`` (s, summed sample intervals), ``cpu/gpu/ram_energy`` and
  ``energy_consumed`` (kWh), ``cpu/gpu/ram_power`` (mean W over the run), ``emissions``
  (kg = gCO2e / 1000) and ``emissions_rate`` (kg/s), ``gpu_count``, ``gpu_model``,
  ``cpu_utilization_percent``, ``gpu_utilization_percent``, ``ram_used_gb`` (the process tree's
  mean RSS) from the run's events; ``timestamp`` = the last event's (UTC ISO-8601).
- ``project_name`` = model name, ``experiment_id`` = user id (carbonpipe's two grouping keys).
- ``region`` = the grid zone (an Electricity Maps zone id such as GB or US-CAL-CISO, not
  CodeCarbon's province name), ``country_name`` from ``data/em_zones.json``,
  ``cloud_provider``/``cloud_region`` from CARBONPIPE_CLOUD_REGION, ``on_cloud`` Y/N from it.
- ``os``, ``python_version``, ``cpu_count``, ``cpu_model`` (the CPU brand string, as
  CodeCarbon means it: NOT the events' ``cpu_model``, which names the estimation method),
  ``ram_total_size`` (GB) from the host.
- ``tracking_mode`` = ``process`` (the CPU share is the process tree's); ``pue`` = 1 and
  ``wue`` = 0 (none applied), so ``water_consumed`` = 0, as CodeCarbon writes with its defaults.
- Left empty: ``country_iso_code`` (CodeCarbon's is ISO 3166 alpha-3; carbonpipe has no cited
  alpha-2 to alpha-3 table), ``codecarbon_version`` (not CodeCarbon), ``longitude``,
  ``latitude`` (location is configuration, never geolocated), ``ram_utilization_percent``.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from collector.predict import Predictor
from collector.summary import Intensity, RunResult, RunTotals, run_result

# codecarbon 3.3.2, codecarbon/output_methods/emissions_data.py, EmissionsData fields in order
CODECARBON_COLUMNS = (
    "timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions",
    "emissions_rate", "cpu_power", "gpu_power", "ram_power", "cpu_energy", "gpu_energy",
    "ram_energy", "energy_consumed", "water_consumed", "country_name", "country_iso_code",
    "region", "cloud_provider", "cloud_region", "os", "python_version", "codecarbon_version",
    "cpu_count", "cpu_model", "gpu_count", "gpu_model", "longitude", "latitude",
    "ram_total_size", "tracking_mode", "cpu_utilization_percent", "gpu_utilization_percent",
    "ram_utilization_percent", "ram_used_gb", "on_cloud", "pue", "wue",
)  # fmt: skip
G_PER_KG = 1000.0
MB_PER_GB = 1024.0  # ram_used_mb is MiB (2**20 bytes); CodeCarbon's GB here are GiB too


def codecarbon_row(r: RunResult, host: Mapping[str, Any]) -> dict[str, Any]:
    """One ``emissions.csv`` row; ``host``: os, python_version, cpu_count, cpu_model,
    ram_total_size_gb, cloud_region (provider:region or ""), country_name."""
    cloud = str(host.get("cloud_region") or "")
    provider, _, region = cloud.partition(":")
    row: dict[str, Any] = dict.fromkeys(CODECARBON_COLUMNS, "")
    row.update(
        timestamp=r.ended_at or "",
        project_name=r.model_name,
        run_id=r.run_id,
        experiment_id=r.user_id,
        duration=r.duration_s,
        emissions=r.co2_g / G_PER_KG,
        emissions_rate=(r.co2_g / G_PER_KG / r.duration_s) if r.duration_s > 0 else 0.0,
        cpu_power=r.cpu_power_w,
        gpu_power=r.gpu_power_w,
        ram_power=r.ram_power_w,
        cpu_energy=r.cpu_kwh,
        gpu_energy=r.gpu_kwh,
        ram_energy=r.ram_kwh,
        energy_consumed=r.energy_kwh,
        water_consumed=0.0,
        country_name=host.get("country_name", ""),
        region=r.zone,
        cloud_provider=provider if cloud else "",
        cloud_region=region if cloud else "",
        os=host.get("os", ""),
        python_version=host.get("python_version", ""),
        cpu_count=host.get("cpu_count", ""),
        cpu_model=host.get("cpu_model", ""),
        gpu_count=r.gpu_count,
        gpu_model=r.gpu_model,
        ram_total_size=host.get("ram_total_size_gb", ""),
        tracking_mode="process",
        cpu_utilization_percent=r.mean_cpu_utilization_pct,
        gpu_utilization_percent=r.mean_gpu_utilization_pct,
        ram_used_gb=r.mean_ram_used_mb / MB_PER_GB,
        on_cloud="Y" if cloud else "N",
        pue=1,
        wue=0,
    )
    return row


def host_info(cloud_region: str | None, country_name: str = "") -> dict[str, Any]:
    """The host facts of a CodeCarbon row (read once, at the end of the run)."""
    import platform

    import psutil

    from collector.tdp import cpu_model_name

    return {
        "os": platform.platform(),
        "python_version": platform.python_version(),
        "cpu_count": os.cpu_count() or "",
        "cpu_model": cpu_model_name(),
        "ram_total_size_gb": psutil.virtual_memory().total / 2**30,
        "cloud_region": cloud_region or "",
        "country_name": country_name,
    }


def append_csv(path: Path, row: Mapping[str, Any]) -> None:
    """Append ``row``; header when the file is new or empty. A file with other columns is
    refused rather than shifted: appending by position would put values under wrong names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header: list[str] | None = None
    if path.exists() and path.stat().st_size > 0:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
        if header is not None and sorted(header) != sorted(row):
            raise ValueError(
                f"{path} has other columns than CodeCarbon's emissions.csv; "
                "pass another --output file"
            )
    with open(path, "a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header or list(row))
        if header is None:
            writer.writeheader()
        writer.writerow(row)


def write_json(path: Path, result: RunResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")


def write_outputs(paths: list[Path], result: RunResult, host: Mapping[str, Any]) -> list[str]:
    """Each ``--output`` file by its suffix (.csv: append a row, .json: the summary).
    Returns error messages (a failed write must not lose the others or the summary)."""
    errors = []
    for path in paths:
        try:
            if path.suffix.lower() == ".json":
                write_json(path, result)
            else:
                append_csv(path, codecarbon_row(result, host))
        except (OSError, ValueError) as exc:
            errors.append(f"--output {path}: {exc}")
    return errors


class EventsFile:
    """Observer: each event as one JSON line to a file (``--events FILE``; ``-`` = stdout)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._fh: IO[str] = (
            sys.stdout if target == "-" else open(target, "a", encoding="utf-8")  # noqa: SIM115
        )

    def on_event(self, event: Mapping[str, Any]) -> None:
        self._fh.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not sys.stdout:
            self._fh.close()


class RunReport:
    """Observer: totals for the summary, and the prediction (printed once, then stamped on
    every later event through ``annotate``)."""

    def __init__(
        self,
        intensity: Intensity,
        total_epochs: Callable[[], int | None] = lambda: None,
        predict_after_epochs: int = 1,
        annotate: Callable[[dict[str, Any]], None] | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.intensity = intensity
        self.totals = RunTotals()
        self.predictor = Predictor(intensity.g_per_kwh, predict_after_epochs)
        self.total_epochs = total_epochs
        self.annotate = annotate
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self._lock = threading.Lock()

    def on_event(self, event: Mapping[str, Any]) -> None:
        with self._lock:
            self.totals.add(event)
            made = self.predictor.observe(event, self.total_epochs())
        if made is not None:
            self.say(made.line())
            if self.annotate is not None:
                self.annotate(made.event_fields())

    def close(self) -> None:
        return None

    def result(self, left_in_spool: int = 0, dropped_events: int = 0) -> RunResult:
        with self._lock:
            p = self.predictor.prediction
            return run_result(
                self.totals, self.intensity, left_in_spool, p.event_fields() if p else None,
                dropped_events,
            )
