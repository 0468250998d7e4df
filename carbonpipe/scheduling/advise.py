"""``schedule advise``: what deferring *this kind* of job has bought in this zone, before the
user commits to waiting (pure: history in, distribution and one paragraph out).

Why: a single plan says "-23 % today", which users over-read; the spread over a year of the
same policy (median, p10, p90, how often nothing was gained) sets the expectation. The
history is scored with perfect hindsight (it is the actual series), so the distribution is
an upper bound for a forecast-driven scheduler; the study bench measures that gap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np

from carbonpipe.core.timeutil import from_datetime64, utc_iso_s
from carbonpipe.scheduling.evaluate import evaluate, window_width
from carbonpipe.scheduling.policies import Forecast, IntArray, Plan, ScheduleError

HISTORY_DAYS = 365
NO_GAIN_PCT = 1e-6  # a reduction at or below this counts as "gained nothing"


@dataclass(frozen=True)
class SavingsDistribution:
    """Reductions vs starting immediately for one job shape submitted every hour."""

    zone: str
    policy: str
    duration_s: float
    deadline_s: float
    period_start: str
    period_end: str
    n_jobs: int
    median_pct: float
    p10_pct: float
    p90_pct: float
    mean_pct: float
    share_no_gain: float
    source: str


def history_submits(fc: Forecast, duration_s: float, deadline_s: float,
                    days: int = HISTORY_DAYS) -> IntArray:
    """Full-hour slots in the last ``days`` of the history whose whole window is known."""
    width = window_width(duration_s, deadline_s, fc.step_s)
    secs = fc.starts.astype("datetime64[s]").astype(np.int64)
    end = int(secs[-1]) + fc.step_s
    i = np.arange(secs.size)
    ok = (secs % 3600 == 0) & (secs >= end - days * 86400) & (i + width <= secs.size)
    return np.asarray(np.flatnonzero(ok), dtype=np.int64)


def savings_distribution(fc: Forecast, duration_s: float, deadline_s: float, *,
                         interruptible: bool, days: int = HISTORY_DAYS) -> SavingsDistribution:
    """Replay the policy the user would get (window, or interruptible) on the history."""
    if duration_s <= 0:
        raise ScheduleError("--duration must be > 0")
    if deadline_s < duration_s:
        raise ScheduleError("--deadline must be at least --duration (else it runs now)")
    idx = history_submits(fc, duration_s, deadline_s, days)
    if idx.size == 0:
        raise ScheduleError(f"history of {fc.zone} is shorter than one job window")
    policy = "interruptible" if interruptible else "window"
    res = evaluate(fc, policy, duration_s, deadline_s, submit_idx=idx)
    r = res.reduction_pct
    return SavingsDistribution(
        zone=fc.zone, policy=policy, duration_s=duration_s, deadline_s=deadline_s,
        period_start=utc_iso_s(from_datetime64(fc.starts[idx[0]])),
        period_end=utc_iso_s(from_datetime64(fc.starts[idx[-1]])), n_jobs=int(r.size),
        median_pct=float(np.median(r)), p10_pct=float(np.percentile(r, 10)),
        p90_pct=float(np.percentile(r, 90)), mean_pct=float(r.mean()),
        share_no_gain=float((r <= NO_GAIN_PCT).mean()),
        source=str(fc.provenance.get("source") or fc.provenance.get("provider") or "?"))


def _h(seconds: float) -> str:
    return f"{seconds / 3600:g} h"


def advice_text(dist: SavingsDistribution, plan: Plan | None, plan_note: str = "",
                now: datetime | None = None) -> str:
    """One paragraph, readable in five seconds: typical gain, spread, how often none, today."""
    how = "paused and resumed in the greenest slots" if dist.policy == "interruptible" \
        else "started at the greenest time"
    text = (f"In {dist.zone}, a {_h(dist.duration_s)} job {how} within {_h(dist.deadline_s)} "
            f"saved {dist.median_pct:.0f} % CO2e typically over the last 12 months "
            f"(median of {dist.n_jobs} hourly submissions; p10 {dist.p10_pct:.0f} %, "
            f"p90 {dist.p90_pct:.0f} %); {100 * dist.share_no_gain:.0f} % of them gained "
            f"nothing by waiting. ")
    if plan is not None:
        wait_h = (plan.start - now).total_seconds() / 3600 if now else None
        when = plan.start.strftime("%a %H:%M UTC") + (
            f" (in {wait_h:.1f} h)" if wait_h is not None else "")
        if plan.reduction_pct <= NO_GAIN_PCT:
            text += (f"Today: start now ({plan.g_per_kwh:.0f} gCO2e/kWh); waiting would not "
                     "help.")
        else:
            text += (f"Today: start {when} for {plan.reduction_pct:.0f} % less "
                     f"({plan.g_per_kwh:.0f} vs {plan.now_g_per_kwh:.0f} gCO2e/kWh now).")
    elif plan_note:
        text += f"No plan for today: {plan_note}."
    return text + " (History scored with hindsight: real forecasts save somewhat less.)"


def advice_dict(dist: SavingsDistribution, plan: Plan | None, plan_note: str = "",
                now: datetime | None = None) -> dict[str, Any]:
    return {"distribution": asdict(dist), "plan": plan.to_dict() if plan else None,
            "plan_note": plan_note, "text": advice_text(dist, plan, plan_note, now)}
