"""Shapes hot-store documents into the dashboard's tables (pure, testable without Streamlit)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from carbonpipe.core.aggregates import dashboard_labels
from carbonpipe.core.config import Settings
from carbonpipe.core.layout import Layout
from dashboard.safe import md

log = logging.getLogger("carbonpipe.dashboard")

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
    """One line a person (and the browser test) can read: the run's figures and provenance.
    Markdown, with every event-supplied string escaped (``dashboard.safe.md``)."""
    mean = run.get("mean_intensity_g_per_kwh")
    return (
        f"**{md(run['run_id'])}** ({md(run.get('user_id'))}, {md(run.get('model_name'))}): "
        f"{run.get('energy_kwh') or 0:.6f} kWh · {run.get('co2_g') or 0:.3f} gCO₂e · "
        f"mean intensity {mean:.1f} g/kWh · energy {md(run.get('method'))}"
        if mean is not None
        else f"**{md(run['run_id'])}**: no energy yet"
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
        f"**Scheduled** ({md(c['policy'])}, {md(c['zone'])}): expected {expected} at "
        f"{c['expected_g_per_kwh']:.1f} g/kWh vs {c['now_g_per_kwh']:.1f} g/kWh if started now "
        f"({c['expected_reduction_pct']:.1f} % less); measured {c['measured_g']:.3f} g"
        + ("" if saved is None else f"; about {saved:.3f} g saved against starting now")
    )


# What ``carbonpipe.scheduling.decisions.new_decision_id`` makes (``20250101T000000Z-1a2b3c4d``),
# with room for hand-made ids: a plain file name, never a path.
DECISION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def decision_log(settings: Settings, decision_id: object) -> dict[str, Any] | None:
    """The scheduler's decision log for a scheduled run, if it is on this host.

    The id comes from an event (anyone who can write to the log chooses it), so it must name a
    JSON file directly inside ``<home>/schedules``: no ``..``, no absolute path, no symlink
    leading out. Anything else, or a file that is not a JSON object, is no log (and logged).
    """
    if not isinstance(decision_id, str) or not decision_id:
        return None
    if not DECISION_ID.fullmatch(decision_id) or ".." in decision_id:
        log.warning("dashboard: refused decision id %r (not a plain file name)", decision_id)
        return None
    folder = Layout(Path(settings.home)).schedules.resolve()
    path = (folder / f"{decision_id}.json").resolve()
    if path.parent != folder or not path.is_file():
        if path.parent != folder:
            log.warning("dashboard: decision log %r leads out of %s", decision_id, folder)
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("dashboard: decision log %s unreadable: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None
