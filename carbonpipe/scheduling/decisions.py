"""Decision logs: what was decided, on which forecast, and later what it really emitted.

One JSON file per decision under ``<home>/schedules/``. The run is tagged with the decision id,
so the dashboard can join a run's measured CO2 with the expectation (``expected_vs_measured``).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from carbonpipe.core.fsutil import atomic_write_text
from carbonpipe.core.timeutil import utc_iso_s
from carbonpipe.scheduling.policies import Forecast, Plan

SCHEMA = "carbonpipe.schedule_decision.v1"


def new_decision_id(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def decisions_dir(home: Path) -> Path:
    return home / "schedules"


def forecast_record(fc: Forecast) -> dict[str, Any]:
    return {
        "zone": fc.zone, "start": utc_iso_s(fc.t0), "step_s": fc.step_s,
        "values_g_per_kwh": [round(float(v), 3) for v in fc.values],
        "provenance": fc.provenance,
    }


def build_log(decision_id: str, created: datetime, request: dict[str, Any],
              forecasts: list[Forecast], plan: Plan, command: list[str]) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "decision_id": decision_id, "created_at": utc_iso_s(created),
        "request": request, "forecasts": [forecast_record(f) for f in forecasts],
        "plan": plan.to_dict(), "command": command, "status": "planned", "run": None,
    }


def write_log(path: Path, log: dict[str, Any]) -> Path:
    """Atomic write, so a dashboard never reads half a file."""
    atomic_write_text(path, json.dumps(log, indent=1, default=str) + "\n")
    return path


def effective_plan(log: dict[str, Any]) -> dict[str, Any]:
    """The plan in force at the end: the last re-plan if any, else the first."""
    replans = (log.get("run") or {}).get("replans") or []
    return dict(replans[-1]["plan"]) if replans else dict(log["plan"])


def expected_vs_measured(decision_log: dict[str, Any], measured_co2_g: float) -> dict[str, Any]:
    """Compare a decision's expectation with the CO2 the collector measured for the run.

    Without ``power_w`` there is no expected gram figure, but the energy implied by the
    measurement at the expected intensity still gives a counterfactual "if started now".
    """
    plan = effective_plan(decision_log)
    exp_gkwh = float(plan["expected_g_per_kwh"])
    now_gkwh = float(plan["now_g_per_kwh"])
    expected_g = plan.get("expected_g")
    implied_kwh = measured_co2_g / exp_gkwh if exp_gkwh > 0 else None
    now_g = implied_kwh * now_gkwh if implied_kwh is not None else None
    out: dict[str, Any] = {
        "decision_id": decision_log.get("decision_id"),
        "zone": plan.get("zone"),
        "policy": plan.get("policy"),
        "expected_g_per_kwh": exp_gkwh,
        "now_g_per_kwh": now_gkwh,
        "expected_reduction_pct": float(plan["reduction_pct"]),
        "measured_g": float(measured_co2_g),
        "expected_g": expected_g,
        "error_g": None if expected_g is None else measured_co2_g - float(expected_g),
        "error_pct": None if not expected_g else 100.0 * (measured_co2_g / float(expected_g) - 1),
        "implied_energy_kwh": implied_kwh,
        "counterfactual_now_g": now_g,
        "estimated_saved_g": None if now_g is None else now_g - measured_co2_g,
        "note": "counterfactual = measured energy at the forecast intensity of starting now",
    }
    return out
