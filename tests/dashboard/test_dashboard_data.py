"""Dashboard data shaping (pure), including a real decision log written by the scheduler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from carbonpipe.core.config import REPO_ROOT, load_settings
from dashboard.data import (
    budget_rows,
    decision_log,
    power_series,
    run_summary,
    scheduled_summary,
)


def test_budgets_report_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONPIPE_BUDGETS_G", "alice=500, bob=1000")
    budgets = load_settings().budgets_g
    rows = budget_rows([{"user_id": "alice", "co2_g": 125.0}, {"user_id": "eve", "co2_g": 1.0}],
                       budgets)  # fmt: skip
    assert rows == [{"user": "alice", "budget (g)": 500.0, "used (g)": 125.0, "used (%)": 25.0}]


def test_power_series_sums_hosts_per_window() -> None:
    ws = [
        {"window_start": 1, "energy_kwh": 1.0, "co2_g": 2.0, "mean_power_w": 10.0},
        {"window_start": 1, "energy_kwh": 0.5, "co2_g": 1.0, "mean_power_w": 5.0},
        {"window_start": 0, "energy_kwh": 0.1, "co2_g": 0.2, "mean_power_w": 1.0},
    ]
    assert power_series(ws) == [
        {"window_start": 0, "energy_kwh": 0.1, "co2_g": 0.2, "power_w": 1.0},
        {"window_start": 1, "energy_kwh": 1.5, "co2_g": 3.0, "power_w": 15.0},
    ]


def test_run_summary_states_the_method() -> None:
    text = run_summary({"run_id": "r", "user_id": "u", "model_name": "m", "energy_kwh": 0.5,
                        "co2_g": 100.0, "mean_intensity_g_per_kwh": 200.0,
                        "method": "estimated"})  # fmt: skip
    assert "0.500000 kWh" in text and "100.000 gCO₂e" in text and "estimated" in text


def test_scheduled_run_shows_expected_against_measured(tmp_path: Path) -> None:
    trace = REPO_ROOT / "data" / "traces" / "us-cal-ciso-2023.csv"
    env = {**os.environ, "CARBONPIPE_HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "carbonpipe.cli", "schedule", "--zone", "US-CAL-CISO",
           "--duration", "1h", "--deadline", "8h", "--trace", str(trace), "--power-w", "300",
           "--dry-run", "--no-collect", "--", "true"]  # fmt: skip
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    (log_file,) = (tmp_path / "schedules").glob("*.json")
    settings = load_settings(home=tmp_path)
    log = decision_log(settings, log_file.stem)
    assert log is not None and log == json.loads(log_file.read_text())
    text = scheduled_summary(log, measured_co2_g=80.0)
    assert "US-CAL-CISO" in text and "measured 80.000 g" in text and "expected" in text


def test_runs_table_shows_what_was_not_counted() -> None:
    from dashboard.data import DELIVERY_COLUMNS, runs_table

    (row,) = runs_table([{"run_id": "r", "duplicates": 25, "zones": ["GB"],
                          "dead_letters": {"late": 3, "not_finite:cpu_energy_j": 1}}])  # fmt: skip
    assert row[DELIVERY_COLUMNS["duplicates"]] == 25 and row[DELIVERY_COLUMNS["late"]] == 3
    assert row[DELIVERY_COLUMNS["dead_letters"]] == "not_finite:cpu_energy_j: 1"
    (clean,) = runs_table([{"run_id": "s"}])
    assert clean[DELIVERY_COLUMNS["duplicates"]] == 0 and clean[DELIVERY_COLUMNS["late"]] == 0
