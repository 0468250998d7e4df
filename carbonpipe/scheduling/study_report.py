"""Edges of the "Let's Wait Awhile" study: trace rows in, tables / JSON / PNG out, the CLI.

``study`` holds the computation; this module only reads files, formats and plots, so the
same numbers come out of ``carbonpipe schedule evaluate --study`` and ``bench/bench_study.py``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from carbonpipe.scheduling.policies import FloatArray, ScheduleError
from carbonpipe.scheduling.study import (
    MAX_WINDOW_SLOTS,
    ML_SCENARIOS,
    POLICIES,
    SCENARIOS,
    SLOT_MIN,
    MLResult,
    NightlyResult,
    Scenario,
    generate_ml_jobs,
    ml_baseline,
    run_ml,
    run_nightly,
    study_series,
)


# ------------------------------------------------------------------------------- loading
@functools.lru_cache(maxsize=8)
def load_study_trace(path: str) -> tuple[str, FloatArray]:
    """(zone, true 30-min series) of a trace file, by the study's rules.

    The raw rows are needed (not ``load_trace``'s time-weighted grid): GB switches to 15-min
    rows in October 2020 and the study keeps the :00 row rather than the slot's mean. The
    file is parsed by the trace module's own CSV/Parquet reader and column picker.
    """
    from carbonpipe.intensity import trace as tr

    p = Path(path)
    if not p.is_file():
        raise ScheduleError(f"{p}: no such trace file")
    header, cols = tr._read_columns(p)
    tcol = tr._pick(header, None, tr.TIME_COLUMNS, "time", p)
    vcol = tr._pick(header, None, tr.VALUE_COLUMNS, "carbon-intensity", p)
    times = np.array([tr._parse_time(v) for v in cols[tcol]], dtype="datetime64[s]")
    values = np.array([float(str(v)) for v in cols[vcol]], dtype=np.float64)
    order = np.argsort(times, kind="stable")
    return tr.zone_from_path(p), study_series(times[order], values[order])


# ------------------------------------------------------------------------------- request
@dataclass(frozen=True)
class StudyRequest:
    """One ``schedule evaluate --study`` call, validated."""

    trace: str
    scenario: Scenario
    interruptible: bool
    error: float
    seeds: tuple[int, ...]
    window_slots: tuple[int, ...]  # nightly only
    as_json: bool = False
    plot: str | None = None


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0-9', '3', '0,2,5' -> sorted unique non-negative seeds."""
    out: set[int] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            raise ScheduleError(f"--seeds {text!r}: use e.g. 0-9 or 0,1,2") from None
        if a < 0 or b < a or b - a > 10_000:
            raise ScheduleError(f"--seeds {text!r}: need 0 <= first <= last (at most 10,001)")
        out.update(range(a, b + 1))
    if not out:
        raise ScheduleError("--seeds: empty")
    return tuple(sorted(out))


def study_request(*, study: str, scenario: str, trace: str | None, error: float,
                  window_h: float | None, interruptible: bool, seeds: str,
                  as_json: bool = False, plot: str | None = None) -> StudyRequest:
    """Range-check the flags (each message names its flag) into a request."""
    if study != "lets-wait-awhile":
        raise ScheduleError(f"--study {study!r}: only 'lets-wait-awhile' is known")
    if scenario not in SCENARIOS:
        raise ScheduleError(f"--scenario must be one of {', '.join(SCENARIOS)}")
    if not trace:
        raise ScheduleError("--trace FILE is required (e.g. ../shared/data/carbon-intensity/"
                            "de-2020.csv)")
    if not 0.0 <= float(error) <= 1.0:
        raise ScheduleError(f"--forecast-error {error:g}: must be between 0 and 1 (0.05 = 5 %)")
    if window_h is not None:
        if scenario != "nightly":
            raise ScheduleError("--window-h applies to --scenario nightly only (ML jobs get "
                                "their window from the deadline rule)")
        if not 0.0 <= window_h <= MAX_WINDOW_SLOTS * SLOT_MIN / 60 \
                or (window_h * 60) % SLOT_MIN:
            raise ScheduleError(f"--window-h {window_h:g}: must be 0..8 in steps of 0.5")
        windows: tuple[int, ...] = (round(window_h * 60 / SLOT_MIN),)
    else:
        windows = tuple(range(MAX_WINDOW_SLOTS + 1))
    if interruptible and scenario == "nightly":
        raise ScheduleError("--interruptible: nightly jobs last one slot; nothing to interrupt")
    return StudyRequest(trace=trace, scenario=scenario, interruptible=interruptible,
                        error=float(error), seeds=parse_seeds(seeds), window_slots=windows,
                        as_json=as_json, plot=plot)


# ------------------------------------------------------------------------------- service
def run_request(req: StudyRequest) -> dict[str, Any]:
    """Both policies (the study's and the smoothed one) for the requested experiment."""
    zone, true = load_study_trace(str(Path(req.trace).resolve()))
    out: dict[str, Any] = {"study": "lets-wait-awhile", "zone": zone, "scenario": req.scenario,
                           "forecast_error": req.error,
                           "seeds": list(req.seeds) if req.error else []}
    if req.scenario == "nightly":
        out["nightly"] = [asdict(run_nightly(zone, true, req.error, req.seeds,
                                             req.window_slots, pol)) for pol in POLICIES]
    else:
        jobs = generate_ml_jobs()
        base = ml_baseline(true, jobs)
        out["ml"] = [asdict(run_ml(zone, true, req.scenario, req.interruptible, req.error,
                                   req.seeds, pol, jobs, base)) for pol in POLICIES]
    return out


# ------------------------------------------------------------------------------ tables
def nightly_table(rows: Sequence[NightlyResult | dict[str, Any]]) -> str:
    """Window (h) down, one 'mean gCO2e/kWh (saving %)' column per zone/error/policy."""
    rs = [r if isinstance(r, dict) else asdict(r) for r in rows]
    head = "| window | " + " | ".join(
        f"{r['zone']} {100 * r['error']:g} % {r['policy']}" for r in rs) + " |"
    lines = [head, "|---|" + "---|" * len(rs)]
    for i, w in enumerate(rs[0]["window_slots"]):
        cells = [f"{r['mean_g_per_kwh'][i]:.1f} ({r['saving_pct'][i]:.1f} %)" for r in rs]
        lines.append(f"| ±{w * SLOT_MIN / 60:g} h | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ml_table(rows: Sequence[MLResult | dict[str, Any]]) -> str:
    """One row per zone/scenario/interruptible, one column per (error, policy)."""
    rs = [r if isinstance(r, dict) else asdict(r) for r in rows]
    cols = sorted({(float(r["error"]), str(r["policy"])) for r in rs},
                  key=lambda c: (c[0], [str(p) for p in POLICIES].index(c[1])))
    keys = []
    for r in rs:
        k = (r["zone"], r["scenario"], bool(r["interruptible"]))
        if k not in keys:
            keys.append(k)
    by = {(r["zone"], r["scenario"], bool(r["interruptible"]), float(r["error"]),
           r["policy"]): r for r in rs}
    lines = ["| zone | scenario | interrupting | " + " | ".join(
        f"{100 * e:g} % {p}" for e, p in cols) + " |", "|---|---|---|" + "---|" * len(cols)]
    for z, s, i in keys:
        cells = []
        for e, p in cols:
            hit = by.get((z, s, i, e, p))
            cells.append("" if hit is None else f"{hit['saving_pct']:.2f}")
        lines.append(f"| {z} | {s} | {'yes' if i else 'no'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ plots
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_nightly(rows: Sequence[dict[str, Any]], out: str | Path) -> None:
    """Like the study's Fig. 9: mean intensity of nightly jobs against the window size."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        hours = [w * SLOT_MIN / 60 for w in r["window_slots"]]
        style = "-" if r["policy"] == "study" else ":"
        ax.plot(hours, r["mean_g_per_kwh"], style, marker=".",
                label=f"{r['zone']} {100 * r['error']:g} % {r['policy']}")
    ax.set_xlabel("window ± h around 01:00")
    ax.set_ylabel("mean gCO₂e/kWh of nightly jobs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_ml(rows: Sequence[dict[str, Any]], out: str | Path) -> None:
    """Like the study's Fig. 11: saving per zone and constraint, bars per forecast error."""
    plt = _plt()
    groups = []
    for r in rows:
        g = (r["zone"], r["scenario"], bool(r["interruptible"]))
        if g not in groups:
            groups.append(g)
    series = sorted({(float(r["error"]), r["policy"]) for r in rows})
    by = {(r["zone"], r["scenario"], bool(r["interruptible"]), float(r["error"]),
           r["policy"]): r["saving_pct"] for r in rows}
    fig, ax = plt.subplots(figsize=(max(6, len(groups) * 1.1), 4))
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for k, (e, p) in enumerate(series):
        ax.bar(x + k * width, [by.get((*g, e, p), np.nan) for g in groups], width,
               label=f"{100 * e:g} % error, {p}", hatch="//" if p != "study" else None)
    ax.set_xticks(x + 0.4 - width / 2)
    ax.set_xticklabels([f"{z}\n{s}\n{'int.' if i else 'non-int.'}" for z, s, i in groups],
                       fontsize=7)
    ax.set_ylabel("saving vs baseline (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------ output
def print_study(req: StudyRequest) -> int:
    """Runs the request and prints a table or JSON (and draws the PNG when asked)."""
    res = run_request(req)
    rows = res.get("nightly") or res.get("ml") or []
    if req.plot:
        (plot_nightly if req.scenario == "nightly" else plot_ml)(rows, req.plot)
    if req.as_json:
        print(json.dumps(res, indent=1))
    elif req.scenario == "nightly":
        print(nightly_table(rows))
    else:
        print(ml_table(rows))
    return 0


__all__ = ["ML_SCENARIOS", "StudyRequest", "load_study_trace", "ml_table", "nightly_table",
           "parse_seeds", "plot_ml", "plot_nightly", "print_study", "run_request",
           "study_request"]
