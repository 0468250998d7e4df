"""Shapes hot-store documents into the dashboard's tables (pure, testable without Streamlit)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from carbonpipe.core.aggregates import dashboard_labels
from carbonpipe.core.config import Settings

IDENTITY_COLUMNS = {
    "run_id": "run",
    "user_id": "user",
    "model_name": "model",
    "start": "start (UTC)",
    "duration_s": "duration (s)",
}


# What the pipeline did not count, per run (spark_jobs.merge.merge_run).
DELIVERY_COLUMNS = {
    "duplicates": "duplicates dropped",
    "late": "late (dead-lettered)",
    "dead_letters": "other dead letters",
}


def run_columns() -> dict[str, str]:
    """Field -> column label of the runs table: identity, the aggregates that declare a label
    (``carbonpipe.core.aggregates``), the zones, and what was not counted."""
    return {**IDENTITY_COLUMNS, **dashboard_labels(), "zones": "zones", **DELIVERY_COLUMNS}


def runs_table(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    columns = run_columns()
    for r in runs:
        row = {label: r.get(key) for key, label in columns.items()}
        row["zones"] = ", ".join(r.get("zones") or [])
        dead = dict(r.get("dead_letters") or {})
        row[DELIVERY_COLUMNS["duplicates"]] = int(r.get("duplicates") or 0)
        row[DELIVERY_COLUMNS["late"]] = int(dead.pop("late", 0))
        row[DELIVERY_COLUMNS["dead_letters"]] = ", ".join(
            f"{reason}: {n}" for reason, n in sorted(dead.items())
        )
        out.append(row)
    return out


def run_summary(run: Mapping[str, Any]) -> str:
    """One line a person (and the browser test) can read: the run's figures and provenance."""
    mean = run.get("mean_intensity_g_per_kwh")
    return (
        f"**{run['run_id']}** ({run.get('user_id')}, {run.get('model_name')}): "
        f"{run.get('energy_kwh') or 0:.6f} kWh · {run.get('co2_g') or 0:.3f} gCO₂e · "
        f"mean intensity {mean:.1f} g/kWh · energy {run.get('method')}"
        if mean is not None
        else f"**{run['run_id']}**: no energy yet"
    )


def power_series(windows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per window (summed over hosts): mean power in W and gCO2e, for the live chart."""
    by_start: dict[Any, dict[str, Any]] = {}
    for w in windows:
        s = by_start.setdefault(
            w["window_start"],
            {"window_start": w["window_start"], "energy_kwh": 0.0, "co2_g": 0.0, "power_w": 0.0},
        )
        s["energy_kwh"] += w.get("energy_kwh") or 0.0
        s["co2_g"] += w.get("co2_g") or 0.0
        s["power_w"] += w.get("mean_power_w") or 0.0
    return [by_start[k] for k in sorted(by_start)]


def budget_rows(
    users: Sequence[Mapping[str, Any]], budgets: Mapping[str, float]
) -> list[dict[str, Any]]:
    rows = []
    for u in users:
        b = budgets.get(u["user_id"])
        if b is None:
            continue
        rows.append({"user": u["user_id"], "budget (g)": b, "used (g)": u["co2_g"],
                     "used (%)": 100.0 * u["co2_g"] / b if b > 0 else None})  # fmt: skip
    return rows


def scheduled_summary(log: Mapping[str, Any], measured_co2_g: float) -> str:
    """Expected (by the scheduler's forecast) against measured emissions of a scheduled run."""
    from carbonpipe.scheduling.decisions import expected_vs_measured

    c = expected_vs_measured(dict(log), measured_co2_g)
    expected = "n/a (no power given)" if c["expected_g"] is None else f"{c['expected_g']:.3f} g"
    saved = c["estimated_saved_g"]
    return (
        f"**Scheduled** ({c['policy']}, {c['zone']}): expected {expected} at "
        f"{c['expected_g_per_kwh']:.1f} g/kWh vs {c['now_g_per_kwh']:.1f} g/kWh if started now "
        f"({c['expected_reduction_pct']:.1f} % less); measured {c['measured_g']:.3f} g"
        + ("" if saved is None else f"; about {saved:.3f} g saved against starting now")
    )


def decision_log(settings: Settings, decision_id: str | None) -> dict[str, Any] | None:
    """The scheduler's decision log for a scheduled run, if it is on this host."""
    if not decision_id:
        return None
    path = Path(settings.home) / "schedules" / f"{decision_id}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data
