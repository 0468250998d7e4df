"""The run page's and the compare view's figures (pure: a run and its windows in, rows out).

The windows are the run's ``series`` document (one row per window and host). Power per device
splits each window's mean power by the device's share of its energy; epochs come from the
``first_epoch``/``last_epoch`` the job keeps per window (``carbonpipe.core.aggregates``): a
window inside one epoch counts to it, one that spans a boundary is split evenly over the
epochs it touches (the page says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from carbonpipe.core.units import DEVICES

DEVICE_POWER = {d: f"{d.upper()} (W)" for d in DEVICES}


def device_power(windows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per window start (hosts summed): mean power per device in W, for a stacked chart."""
    acc: dict[Any, dict[str, Any]] = {}
    for w in windows:
        row = acc.setdefault(w["window_start"], {"window_start": w["window_start"],
                                                 **dict.fromkeys(DEVICE_POWER.values(), 0.0)})
        e = w.get("energy_kwh") or 0.0
        p = w.get("mean_power_w") or 0.0
        if e <= 0:
            continue
        for d, label in DEVICE_POWER.items():
            row[label] += p * (w.get(f"{d}_kwh") or 0.0) / e
    return [acc[k] for k in sorted(acc)]


def mean_power(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The mean of ``device_power``'s rows per device (W over the run's windows)."""
    n = len(rows)
    return {label: (sum(r[label] for r in rows) / n if n else 0.0)
            for label in DEVICE_POWER.values()}  # fmt: skip


def intensity_and_cumulative(windows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per window start: the intensity charged (energy-weighted over hosts) and the run's
    cumulative gCO2e so far."""
    acc: dict[Any, list[float]] = {}
    for w in windows:
        cur = acc.setdefault(w["window_start"], [0.0, 0.0])
        cur[0] += w.get("energy_kwh") or 0.0
        cur[1] += w.get("co2_g") or 0.0
    out, total = [], 0.0
    for k in sorted(acc):
        e, g = acc[k]
        total += g
        out.append({"window_start": k, "intensity (g/kWh)": g / e if e > 0 else None,
                    "cumulative gCO₂e": total})  # fmt: skip
    return out


def per_epoch(windows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """kWh and gCO2e per epoch (windows without an epoch are left out), oldest epoch first,
    with the last step seen in it."""
    acc: dict[int, dict[str, Any]] = {}
    for w in windows:
        lo, hi = w.get("first_epoch"), w.get("last_epoch")
        if lo is None or hi is None:
            continue
        epochs = range(int(lo), int(hi) + 1)
        for ep in epochs:
            cur = acc.setdefault(ep, {"epoch": ep, "energy_kwh": 0.0, "co2_g": 0.0,
                                      "windows": 0, "last_step": None})  # fmt: skip
            cur["energy_kwh"] += (w.get("energy_kwh") or 0.0) / len(epochs)
            cur["co2_g"] += (w.get("co2_g") or 0.0) / len(epochs)
            cur["windows"] += 1
        step = w.get("last_step")
        if step is not None:
            last = acc[int(hi)]
            last["last_step"] = max(int(step), last["last_step"] or 0)
    return [acc[k] for k in sorted(acc)]


def provenance(run: Mapping[str, Any]) -> list[dict[str, str]]:
    """Where each figure of the run comes from, one row per figure (plain text)."""
    e = run.get("energy_kwh") or 0.0

    def pct(k: str) -> str:
        return f"{100.0 * (run.get(k) or 0.0) / e:.1f} %" if e > 0 else "n/a"

    providers = ", ".join(str(p) for p in run.get("intensity_providers") or []) or "none"
    return [
        {"figure": "energy", "source": f"method {run.get('method') or 'unknown'}: "
         f"{pct('measured_kwh')} measured (RAPL/NVML), {pct('estimated_kwh')} estimated"},
        {"figure": "intensity", "source": f"providers {providers}; {pct('fallback_kwh')} of the "
         "energy charged a fallback annual average"},
        {"figure": "CO₂e", "source": "energy × intensity in force per event, summed per window"},
        {"figure": "hosts", "source": ", ".join(str(h) for h in run.get("hosts") or []) or "-"},
        {"figure": "zones", "source": ", ".join(str(z) for z in run.get("zones") or []) or "-"},
    ]  # fmt: skip


def delivery(run: Mapping[str, Any]) -> dict[str, int]:
    """What the pipeline did not count for this run: duplicates, late, other dead letters."""
    dead = dict(run.get("dead_letters") or {})
    late = int(dead.pop("late", 0))
    return {"events counted": int(run.get("n_events") or 0),
            "duplicates dropped": int(run.get("duplicates") or 0), "late (dead-lettered)": late,
            "other dead letters": sum(int(v) for v in dead.values())}  # fmt: skip


COMPARE_FIELDS = {
    "user_id": "user", "model_name": "model", "start": "start (UTC)", "duration_s": "duration (s)",
    "energy_kwh": "energy (kWh)", "co2_g": "CO₂e (g)",
    "mean_intensity_g_per_kwh": "mean intensity (g/kWh)", "cpu_kwh": "CPU (kWh)",
    "gpu_kwh": "GPU (kWh)", "ram_kwh": "RAM (kWh)", "method": "method",
    "last_epoch": "last epoch (from 0)", "n_events": "events",
}  # fmt: skip
MAX_COMPARE = 5


def compare_table(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per figure, one column per run (ids as column names), plus kWh per epoch."""
    rows = []
    for key, label in COMPARE_FIELDS.items():
        rows.append({"figure": label, **{str(r["run_id"]): _cell(r.get(key)) for r in runs}})
    per = {}
    for r in runs:
        ep = r.get("last_epoch")
        n = int(ep) + 1 if ep is not None else 0  # epochs count from 0
        per[str(r["run_id"])] = _cell((r.get("energy_kwh") or 0.0) / n) if n else "-"
    rows.append({"figure": "kWh per epoch", **per})
    return rows


def _cell(v: Any) -> str:
    """Compare cells are text (mixed types in one column)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
