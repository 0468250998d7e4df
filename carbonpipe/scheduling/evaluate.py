"""Replay a real intensity trace: place many jobs with a policy, score them on the truth.

Each job sees the trace from its submit slot up to its deadline, optionally with seeded
Gaussian relative noise (the *forecast*); the chosen allocation is always scored on the true
trace and compared with starting immediately. All jobs of one (duration, deadline) go through
the batch cores at once, so a year of hourly submissions takes well under a second.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from carbonpipe.core.timeutil import from_datetime64, parse_duration_s, parse_iso
from carbonpipe.scheduling.policies import (
    AllowedHours,
    Batch,
    BoolArray,
    FloatArray,
    Forecast,
    IntArray,
    ScheduleError,
    auto_threshold,
    cost_of,
    interruptible_batch,
    job_slots,
    threshold_batch,
    window_batch,
    window_costs,
)

EVAL_POLICIES = ("threshold", "window", "interruptible", "multizone")


@dataclass(frozen=True, eq=False)
class JobResults:
    """Per-job outcome arrays of one evaluation (all intensities in gCO2e/kWh, true trace)."""

    policy: str
    zone: str
    duration_s: float
    deadline_s: float
    submit_idx: IntArray
    now_g: FloatArray
    plan_g: FloatArray
    feasible: BoolArray
    start_s: FloatArray  # offset of the first used slot from submit
    end_s: FloatArray  # end of the last used slot part, from submit
    zone_idx: IntArray
    zones: tuple[str, ...]
    reason: str = ""

    @property
    def reduction_pct(self) -> FloatArray:
        return np.asarray(100.0 * (1.0 - self.plan_g / self.now_g), dtype=np.float64)

    def summary(self) -> dict[str, Any]:
        r = self.reduction_pct
        n = int(r.size)
        agg = 100.0 * (1.0 - self.plan_g.sum() / self.now_g.sum()) if n else float("nan")
        return {
            "policy": self.policy, "zone": self.zone,
            "duration_h": self.duration_s / 3600, "deadline_h": self.deadline_s / 3600,
            "n_jobs": n, "feasible_share": float(self.feasible.mean()) if n else 0.0,
            "mean_reduction_pct": float(r.mean()) if n else float("nan"),
            "median_reduction_pct": float(np.median(r)) if n else float("nan"),
            "min_reduction_pct": float(r.min()) if n else float("nan"),
            "p10_reduction_pct": float(np.percentile(r, 10)) if n else float("nan"),
            "p90_reduction_pct": float(np.percentile(r, 90)) if n else float("nan"),
            "aggregate_reduction_pct": float(agg),
            "share_worse_than_now": float((r < -1e-9).mean()) if n else 0.0,
            "mean_now_g_per_kwh": float(self.now_g.mean()) if n else float("nan"),
            "mean_plan_g_per_kwh": float(self.plan_g.mean()) if n else float("nan"),
            "mean_delay_h": float(self.start_s.mean() / 3600) if n else float("nan"),
            "reason": self.reason,
        }

    def jobs(self, starts: Any) -> list[dict[str, Any]]:
        out = []
        r = self.reduction_pct
        for j in range(self.submit_idx.size):
            out.append({
                "submit": from_datetime64(starts[self.submit_idx[j]]).isoformat(),
                "zone": self.zones[int(self.zone_idx[j])],
                "start_offset_h": float(self.start_s[j] / 3600),
                "end_offset_h": float(self.end_s[j] / 3600),
                "now_g_per_kwh": float(self.now_g[j]), "plan_g_per_kwh": float(self.plan_g[j]),
                "reduction_pct": float(r[j]), "feasible": bool(self.feasible[j]),
            })
        return out


def hourly_submits(fc: Forecast, width: int) -> IntArray:
    """Slots starting on a full hour that leave ``width`` slots of trace after them."""
    secs = fc.starts.astype("datetime64[s]").astype(np.int64)
    idx = np.flatnonzero(secs % 3600 == 0)
    return idx[idx + width <= fc.starts.size].astype(np.int64)


def window_width(duration_s: float, deadline_s: float, step_s: int) -> int:
    full, frac = job_slots(duration_s, step_s)
    return max(int(np.ceil(deadline_s / step_s - 1e-9)), full + (1 if frac else 0))


def _views(values: FloatArray, idx: IntArray, width: int) -> FloatArray:
    return np.asarray(sliding_window_view(values, width)[idx], dtype=np.float64)


def _noisy(v: FloatArray, error: float, rng: np.random.Generator) -> FloatArray:
    if error <= 0:
        return v
    return np.asarray(v * (1.0 + error * rng.standard_normal(v.shape)), dtype=np.float64)


def _place(policy: str, seen: FloatArray, duration_s: float, deadline_s: float, step_s: int,
           allowed: BoolArray | None, threshold: float | None, max_delay_s: float | None) -> Batch:
    if policy == "window":
        return window_batch(seen, duration_s, deadline_s, step_s, allowed)
    if policy == "interruptible":
        return interruptible_batch(seen, duration_s, deadline_s, step_s, allowed)
    if policy == "threshold":
        thr = auto_threshold(seen, deadline_s, step_s) if threshold is None else threshold
        delay = deadline_s - duration_s if max_delay_s is None else max_delay_s
        return threshold_batch(seen, duration_s, step_s, thr, max(delay, 0.0), deadline_s,
                               allowed)
    raise ScheduleError(f"unknown policy {policy!r}; one of {', '.join(EVAL_POLICIES)}")


def _span(alloc: FloatArray, step_s: int) -> tuple[FloatArray, FloatArray]:
    used = alloc > 1e-9
    w = alloc.shape[1]
    first = np.argmax(used, axis=1)
    last = w - 1 - np.argmax(used[:, ::-1], axis=1)
    frac_last = alloc[np.arange(alloc.shape[0]), last]
    return (first * step_s).astype(np.float64), ((last + frac_last) * step_s).astype(np.float64)


def evaluate(
    fc: Forecast, policy: str, duration_s: float, deadline_s: float, *,
    submit_idx: IntArray | None = None, forecast_error: float = 0.0, seed: int = 1,
    threshold: float | None = None, max_delay_s: float | None = None,
    allowed: AllowedHours | None = None, others: Mapping[str, Forecast] | None = None,
) -> JobResults:
    """Place jobs submitted at ``submit_idx`` (default: every hour) and score them.

    ``others``: for ``multizone``, forecasts of the other zones on ``fc``'s exact grid.
    """
    step = fc.step_s
    width = window_width(duration_s, deadline_s, step)
    idx = hourly_submits(fc, width) if submit_idx is None else submit_idx
    idx = idx[idx + width <= fc.starts.size]
    rng = np.random.default_rng(seed)
    mask_full = allowed.mask(fc.starts, step) if allowed is not None else None
    amask = None if mask_full is None else np.asarray(
        sliding_window_view(mask_full, width)[idx], dtype=np.bool_)
    true = _views(fc.values, idx, width)
    now_g = window_costs(true, duration_s, step)[:, 0] * step / duration_s
    zones: list[str] = [fc.zone]
    zone_idx = np.zeros(idx.size, dtype=np.int64)
    if policy == "multizone":
        cands = {fc.zone: fc, **{z: o for z, o in (others or {}).items() if z != fc.zone}}
        zones = list(cands)
        best_cost = np.full(idx.size, np.inf)
        alloc = np.zeros_like(true)
        truth = np.zeros_like(true)
        feasible = np.zeros(idx.size, dtype=np.bool_)
        reason = ""
        for z_i, z in enumerate(zones):
            o = cands[z]
            if o.step_s != step or o.starts.size != fc.starts.size or o.starts[0] != fc.starts[0]:
                raise ScheduleError(f"multizone: zone {z} is not on the grid of {fc.zone}")
            t_z = _views(o.values, idx, width)
            seen = _noisy(t_z, forecast_error, rng)
            b = window_batch(seen, duration_s, deadline_s, step, amask)
            c = cost_of(b.alloc, seen)
            better = c < best_cost
            best_cost = np.where(better, c, best_cost)
            alloc[better], truth[better] = b.alloc[better], t_z[better]
            feasible = np.where(better, b.feasible, feasible)
            zone_idx[better] = z_i
            reason = reason or b.reason
            if z_i == 0:
                home_alloc, home_true = b.alloc, t_z
        stuck = ~feasible  # no zone can meet the deadline: run now at home, like the others
        alloc[stuck], truth[stuck], zone_idx[stuck] = home_alloc[stuck], home_true[stuck], 0
        plan_g = cost_of(alloc, truth) * step / duration_s
    else:
        seen = _noisy(true, forecast_error, rng)
        b = _place(policy, seen, duration_s, deadline_s, step, amask, threshold, max_delay_s)
        alloc, feasible, reason = b.alloc, b.feasible, b.reason
        plan_g = cost_of(alloc, true) * step / duration_s
    start_s, end_s = _span(alloc, step)
    return JobResults(policy, fc.zone, duration_s, deadline_s, idx, now_g, plan_g, feasible,
                      start_s, end_s, zone_idx, tuple(zones), reason)


def align(forecasts: Sequence[Forecast], step_s: int | None = None) -> list[Forecast]:
    """Put zones on one grid (coarsest step, common time span) by averaging finer slots."""
    step = step_s or max(f.step_s for f in forecasts)
    lo = max(int(f.starts[0].astype("datetime64[s]").astype(np.int64)) for f in forecasts)
    hi = min(int(f.starts[-1].astype("datetime64[s]").astype(np.int64)) + f.step_s
             for f in forecasts)
    lo += (-lo) % step
    n = (hi - lo) // step
    if n <= 0:
        raise ScheduleError("multizone: the traces do not overlap in time")
    out = []
    for f in forecasts:
        if step % f.step_s:
            raise ScheduleError(f"cannot resample {f.zone} step {f.step_s}s to {step}s")
        r = step // f.step_s
        i0 = (lo - int(f.starts[0].astype("datetime64[s]").astype(np.int64))) // f.step_s
        vals = f.values[i0 : i0 + n * r].reshape(n, r).mean(axis=1)
        starts = np.datetime64(lo, "s") + np.arange(n) * np.timedelta64(step, "s")
        out.append(Forecast(f.zone, starts, vals, step, dict(f.provenance)))
    return out


# --------------------------------------------------------------------------- job CSV files
@dataclass(frozen=True)
class JobSpec:
    submit: datetime
    duration_s: float
    deadline_s: float
    interruptible: bool


def read_jobs(path: str | Path) -> list[JobSpec]:
    """submit_time,duration,deadline,interruptible; deadline is a duration after submit
    (``24h``) or an absolute UTC timestamp."""
    jobs = []
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            submit = parse_iso(row["submit_time"])
            dl_text = row["deadline"].strip()
            try:
                deadline_s = parse_duration_s(dl_text)
            except ValueError:
                deadline_s = (parse_iso(dl_text) - submit).total_seconds()
            inter = str(row.get("interruptible", "")).strip().lower() in ("1", "true", "yes", "y")
            jobs.append(JobSpec(submit, parse_duration_s(row["duration"]), deadline_s, inter))
    return jobs


def evaluate_jobs(fc: Forecast, jobs: Sequence[JobSpec], policy: str,
                  **kw: Any) -> list[tuple[JobSpec, dict[str, Any]]]:
    """Evaluate listed jobs, grouped by shape; non-interruptible jobs fall back to 'window'
    when the policy is 'interruptible'. Submit times are floored to the trace's slot."""
    secs0 = int(fc.starts[0].astype("datetime64[s]").astype(np.int64))
    groups: dict[tuple[float, float, str], list[int]] = {}
    for j, job in enumerate(jobs):
        pol = "window" if policy == "interruptible" and not job.interruptible else policy
        groups.setdefault((job.duration_s, job.deadline_s, pol), []).append(j)
    out: list[tuple[JobSpec, dict[str, Any]] | None] = [None] * len(jobs)
    for (dur, dl, pol), members in groups.items():
        idx = np.array([(int(jobs[j].submit.timestamp()) - secs0) // fc.step_s
                        for j in members], dtype=np.int64)
        inside = idx >= 0
        res = evaluate(fc, pol, dur, dl, submit_idx=idx[inside], **kw)
        rows = iter(res.jobs(fc.starts))
        kept = {int(i) for i in res.submit_idx}
        for j, i in zip(members, idx, strict=True):
            row = next(rows) if int(i) in kept else {"error": "outside the trace"}
            out[j] = (jobs[j], {**row, "policy": pol})
    return [o for o in out if o is not None]


# ----------------------------------------------------------------------------- reporting
