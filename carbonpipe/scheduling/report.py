"""Reports over replays of real traces: tables, plots, every shared trace, and the
``schedule evaluate`` service (one request in, summaries and per-job rows out).

The replay engine itself is ``evaluate.py`` (pure numpy); this module reads trace files,
writes results and draws.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from carbonpipe.core.fsutil import atomic_write_text
from carbonpipe.scheduling.evaluate import (
    EVAL_POLICIES,
    JobResults,
    align,
    evaluate,
    evaluate_jobs,
    read_jobs,
)
from carbonpipe.scheduling.policies import AllowedHours, Forecast, ScheduleError


def summary_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of evaluation summaries."""
    head = ("| trace | policy | job h | deadline h | jobs | mean % | median % | p10 % | p90 % | "
            "aggregate % | worse than now |\n|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        if not r.get("feasible_share"):
            lines.append(f"| {r.get('trace', r['zone'])} | {r['policy']} | {r['duration_h']:g} | "
                         f"{r['deadline_h']:g} | {r['n_jobs']} | n/a: {r['reason'] or 'infeasible'}"
                         " | | | | | |")
            continue
        lines.append(
            f"| {r.get('trace', r['zone'])} | {r['policy']} | {r['duration_h']:g} | "
            f"{r['deadline_h']:g} | {r['n_jobs']} | {r['mean_reduction_pct']:.1f} | "
            f"{r['median_reduction_pct']:.1f} | {r['p10_reduction_pct']:.1f} | "
            f"{r['p90_reduction_pct']:.1f} | {r['aggregate_reduction_pct']:.1f} | "
            f"{100 * r['share_worse_than_now']:.0f}% |")
    return "\n".join(lines)


def headline_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Compact pivot: trace x policy rows, 'mean / median %' per job length/deadline."""
    combos = sorted({(float(r["duration_h"]), float(r["deadline_h"])) for r in rows})
    by = {(r.get("trace", r["zone"]), r["policy"], float(r["duration_h"]),
           float(r["deadline_h"])): r for r in rows}
    lines = ["| trace | policy | " + " | ".join(f"{d:g} h / {dl:g} h" for d, dl in combos)
             + " |", "|---|---|" + "---|" * len(combos)]
    order = {p: i for i, p in enumerate(EVAL_POLICIES)}
    for trace, pol in sorted({(k[0], k[1]) for k in by}, key=lambda k: (k[0], order[k[1]])):
        cells = []
        for d, dl in combos:
            r = by.get((trace, pol, d, dl))
            if r is None:
                cells.append("")
            elif not r["feasible_share"]:
                cells.append("infeasible (runs now)")
            else:
                cells.append(f"{r['mean_reduction_pct']:.1f} / {r['median_reduction_pct']:.1f}")
        lines.append(f"| {trace} | {pol} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: Sequence[JobResults], fc: Forecast, out: str | Path) -> None:
    """Reduction per submit time (daily mean) and its distribution, one line per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [3, 1]})
    for res in results:
        r = res.reduction_pct
        days = fc.starts[res.submit_idx].astype("datetime64[D]")
        uniq, inv = np.unique(days, return_inverse=True)
        daily = np.bincount(inv, weights=r) / np.bincount(inv)
        ax1.plot(uniq.astype("datetime64[s]").astype(datetime), daily, lw=0.8,
                 label=f"{res.policy} (median {np.median(r):.1f}%)")
        ax2.hist(r, bins=40, histtype="step", label=res.policy)
    res0 = results[0]
    ax1.set_title(f"{res0.zone}: {res0.duration_s / 3600:g} h job, deadline "
                  f"{res0.deadline_s / 3600:g} h — reduction vs starting now (daily mean)")
    ax1.set_ylabel("reduction %")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("reduction % per job")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------- all shared traces
SHARED_PATTERNS = ("*-2020.csv", "us-cal-ciso-*.csv")
DURATIONS_H = (1, 4, 12)
DEADLINES_H = (8, 24)


def shared_trace_files(root: Path) -> list[Path]:
    files = sorted({p for pat in SHARED_PATTERNS for p in root.glob(pat)})
    return [p for p in files if "production" not in p.name]


def evaluate_all(
    root: Path, *, policies: Sequence[str] = EVAL_POLICIES, forecast_error: float = 0.0,
    seed: int = 1, durations_h: Sequence[float] = DURATIONS_H,
    deadlines_h: Sequence[float] = DEADLINES_H,
) -> list[dict[str, Any]]:
    """Every shared trace x policy x job length x deadline -> summary rows.

    multizone runs over the traces that overlap in time (DE/GB/FR 2020), on their common
    30-minute grid, with the row's trace as the home zone; elsewhere it is skipped.
    """
    from carbonpipe.scheduling.forecast import load_trace_forecast

    files = shared_trace_files(root)
    fcs = {p.name: load_trace_forecast(p) for p in files}
    year_groups: dict[str, list[str]] = {}
    for name, f in fcs.items():
        year_groups.setdefault(str(f.starts[f.starts.size // 2].astype("datetime64[Y]")),
                               []).append(name)
    rows: list[dict[str, Any]] = []
    for name, fc in fcs.items():
        peers = [n for n in year_groups[str(fc.starts[fc.starts.size // 2]
                                            .astype("datetime64[Y]"))]
                 if fcs[n].zone != fc.zone]
        aligned: dict[str, Forecast] = {}
        if peers:
            al = align([fc] + [fcs[n] for n in peers])
            aligned = {f.zone: f for f in al}
        for pol in policies:
            if pol == "multizone" and not aligned:
                continue
            base = aligned[fc.zone] if pol == "multizone" else fc
            for d in durations_h:
                for dl in deadlines_h:
                    t0 = time.perf_counter()
                    res = evaluate(base, pol, d * 3600.0, dl * 3600.0,
                                   forecast_error=forecast_error, seed=seed,
                                   others=aligned if pol == "multizone" else None)
                    row = {"trace": name, **res.summary(),
                           "forecast_error": forecast_error, "step_s": base.step_s,
                           "zones": list(res.zones), "seconds": time.perf_counter() - t0}
                    rows.append(row)
    return rows


def write_all(rows: Sequence[Mapping[str, Any]], out_dir: Path, note: str = "") -> tuple[Path,
                                                                                          Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / "schedule_evaluation.json", out_dir / "schedule_evaluation.md"
    atomic_write_text(js, json.dumps({"rows": list(rows), "note": note}, indent=1, default=str)
                      + "\n")
    parts = ["# Carbon-aware scheduling on the shared traces", note]
    for err in sorted({float(r.get("forecast_error", 0.0)) for r in rows}):
        sel = [r for r in rows if float(r.get("forecast_error", 0.0)) == err]
        title = "perfect forecast" if err == 0 else f"forecast with {100 * err:g} % relative " \
            "Gaussian error (i.i.d. per slot, seeded)"
        parts += [f"## Reduction vs starting now: {title}",
                  "Headline: mean / median % per job (job length / deadline).",
                  headline_table(sel), "Details:", summary_table(sel)]
    atomic_write_text(md, "\n\n".join(parts) + "\n")
    return js, md


ALL_SHARED_NOTE = (
    "One job submitted at every full hour of each trace, perfect forecast unless "
    "forecast_error > 0; emissions scored on the true trace; reduction = 1 - plan/now of the "
    "job's mean gCO2e/kWh. threshold uses an auto threshold (30th percentile of the forecast "
    "up to the deadline) and max delay = deadline - duration. multizone = best contiguous "
    "window over DE/GB/FR 2020 on a common 30-min grid (spatial shifting: assumes capacity in "
    "the other zone, ignores data-transfer energy). 12 h jobs cannot meet an 8 h deadline: "
    "they run now (0 %). Traces: Let's Wait Awhile DE/GB/FR 2020 (life-cycle factors), "
    "Electricity Maps US-CAL-CISO 2021-2023 (LCA column).")


# ---------------------------------------------------------------------- the evaluate service
@dataclass(frozen=True)
class EvaluateRequest:
    """One ``carbonpipe schedule evaluate`` replay (``--study`` runs go to ``study_report``)."""

    traces: tuple[str, ...]  # the first is the home zone; more for multizone
    policies: tuple[str, ...] = ("threshold", "window", "interruptible")
    duration_s: float = 4 * 3600.0
    deadline_s: float = 24 * 3600.0
    jobs_csv: str | None = None
    forecast_error: float = 0.0
    seed: int = 1
    threshold_g_per_kwh: float | None = None
    max_delay_s: float | None = None
    allowed: AllowedHours | None = None

    def __post_init__(self) -> None:
        if not self.traces:
            raise ScheduleError("--trace FILE (or --all-shared) is required")
        bad = [p for p in self.policies if p not in EVAL_POLICIES]
        if bad or not self.policies:
            raise ScheduleError(f"--policy {bad or ''}: choose from {', '.join(EVAL_POLICIES)}")
        if "multizone" in self.policies and len(self.traces) < 2:
            raise ScheduleError("multizone needs several --trace files (comma-separated)")
        if not 0.0 <= self.forecast_error <= 1.0:
            raise ScheduleError("--forecast-error must be between 0 and 1 (0.05 = 5 %)")
        if not 0 < self.duration_s <= self.deadline_s:
            raise ScheduleError("--duration must be more than 0 and at most --deadline")


@dataclass
class Evaluation:
    summaries: list[dict[str, Any]]
    jobs: dict[str, list[dict[str, Any]]]
    results: list[tuple[JobResults, Forecast]]


def run_evaluation(req: EvaluateRequest, per_job: bool = False) -> Evaluation:
    """Each policy over every hourly submission (or the jobs CSV) of the home trace."""
    from carbonpipe.scheduling.forecast import load_trace_forecast

    fcs = [load_trace_forecast(t) for t in req.traces]
    home = fcs[0]
    others = {f.zone: f for f in align(fcs)} if "multizone" in req.policies else None
    kw: dict[str, Any] = {"forecast_error": req.forecast_error, "seed": req.seed,
                          "threshold": req.threshold_g_per_kwh, "max_delay_s": req.max_delay_s,
                          "allowed": req.allowed}
    out = Evaluation([], {}, [])
    for pol in req.policies:
        base = others[home.zone] if pol == "multizone" and others else home
        if req.jobs_csv:
            placed = evaluate_jobs(base, read_jobs(req.jobs_csv), pol, others=others, **kw)
            out.jobs[pol] = [r for _, r in placed]
            red = [float(r["reduction_pct"]) for _, r in placed if "reduction_pct" in r]
            out.summaries.append({
                "policy": pol, "zone": home.zone, "n_jobs": len(red),
                "mean_reduction_pct": float(np.mean(red)) if red else None,
                "median_reduction_pct": float(np.median(red)) if red else None})
            continue
        res = evaluate(base, pol, req.duration_s, req.deadline_s, others=others, **kw)
        out.results.append((res, base))
        out.summaries.append(res.summary())
        if per_job:
            out.jobs[pol] = res.jobs(base.starts)
    return out


def write_jobs_csv(path: Path, jobs: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    keys = ["policy", "submit", "zone", "start_offset_h", "end_offset_h", "now_g_per_kwh",
            "plan_g_per_kwh", "reduction_pct", "feasible"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for pol, rows in jobs.items():
            for r in rows:
                w.writerow({**r, "policy": pol})
