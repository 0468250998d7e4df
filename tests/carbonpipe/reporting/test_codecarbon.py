"""CodeCarbon layout (pure): units converted, read back by pandas under CodeCarbon's names."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pandas as pd
import pytest

from carbonpipe.reporting.codecarbon import COLUMNS, row

RUN = {"run_id": "r1", "user_id": "u", "model_name": "resnet", "tags": {"project": "vision"},
       "start": datetime(2026, 12, 1, 10, tzinfo=timezone.utc),
       "end": datetime(2026, 12, 1, 11, tzinfo=timezone.utc), "duration_s": 3600.0,
       "energy_kwh": 1.5, "cpu_kwh": 0.5, "gpu_kwh": 0.9, "ram_kwh": 0.1, "co2_g": 300.0,
       "zones": ["GB"], "cpu_count": 8, "ram_total_mb": 16384}  # fmt: skip


def test_units_are_codecarbons() -> None:
    r = row(RUN, 1.0, "0.0")
    assert tuple(r) == COLUMNS
    assert r["emissions"] == pytest.approx(0.3) and r["energy_consumed"] == pytest.approx(1.5)
    assert r["emissions_rate"] == pytest.approx(0.3 / 3600)
    assert r["gpu_power"] == pytest.approx(900.0)  # 0.9 kWh over one hour
    assert r["project_name"] == "vision" and r["experiment_id"] == "resnet"
    assert r["timestamp"] == "2026-12-01T11:00:00+00:00" and r["ram_total_size"] == 16.0
    assert row(RUN, 1.2, "0.0")["emissions"] == pytest.approx(0.36)  # facility, as CodeCarbon


def test_pandas_reads_it_by_codecarbons_column_names() -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    w.writerow(row(RUN, 1.0, "0.0"))
    df = pd.read_csv(io.StringIO(buf.getvalue()))
    for name in ("timestamp", "project_name", "run_id", "duration", "emissions",
                 "energy_consumed", "cpu_energy", "gpu_energy", "ram_energy", "pue"):
        assert name in df.columns
    assert df["emissions"].sum() == pytest.approx(0.3)
