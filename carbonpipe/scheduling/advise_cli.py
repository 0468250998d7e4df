"""Edges of ``carbonpipe schedule advise``: where the history and today's forecast come from.

History: ``--trace FILE``, else the configured providers' last 12 months, else a bundled or
shared trace for the zone. Today's plan reuses the ``schedule`` command's own forecast and
decision code (``cli._forecasts`` / ``cli.decide``), so advice and action never disagree.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from carbonpipe.scheduling.advise import (
    HISTORY_DAYS,
    SavingsDistribution,
    advice_dict,
    advice_text,
    savings_distribution,
)
from carbonpipe.scheduling.policies import Forecast, Plan, ScheduleError

MIN_HISTORY_DAYS = 30


@dataclass(frozen=True)
class AdviceRequest:
    zone: str | None
    duration_s: float
    deadline_s: float
    interruptible: bool
    trace: str | None = None


def advise_parser() -> argparse.ArgumentParser:
    from carbonpipe.scheduling.cli import _dur

    p = argparse.ArgumentParser(
        prog="carbonpipe schedule advise",
        description="Before deferring: what this policy saved over the last 12 months in the "
                    "zone (median, p10, p90, share that gained nothing) and today's plan.")
    p.add_argument("--zone", default=None, help="grid zone (default: CARBONPIPE_ZONE)")
    p.add_argument("--duration", type=_dur, required=True, help="expected run time, e.g. 6h")
    p.add_argument("--deadline", type=_dur, default=24 * 3600.0, help="finish within (24h)")
    p.add_argument("--interruptible", action="store_true", help="job may pause and resume")
    p.add_argument("--trace", default=None, help="history (and today's replay) from this file")
    p.add_argument("--json", action="store_true")
    return p


def request_from_args(ns: argparse.Namespace) -> AdviceRequest:
    if not 0 < ns.duration <= 30 * 86400:
        raise ScheduleError("--duration must be between 0 and 30 days")
    if not ns.duration <= ns.deadline <= 30 * 86400:
        raise ScheduleError("--deadline must be between --duration and 30 days")
    return AdviceRequest(ns.zone, float(ns.duration), float(ns.deadline),
                         bool(ns.interruptible), ns.trace)


def history_forecast(req: AdviceRequest, now: datetime) -> Forecast:
    """The zone's last 12 months of actual intensity (module doc for the order)."""
    from carbonpipe.config import get_settings
    from carbonpipe.intensity.trace import find_trace
    from carbonpipe.scheduling.forecast import _chain, forecast_from_points, load_trace_forecast

    if req.trace:
        return load_trace_forecast(req.trace)
    settings = get_settings()
    zone = req.zone or settings.zone
    if not zone:
        raise ScheduleError("no zone: pass --zone (or set CARBONPIPE_ZONE) or --trace FILE")
    try:
        pts = _chain(settings, None).history(zone, now - timedelta(days=HISTORY_DAYS), now)
        fc = forecast_from_points(list(pts), zone)
        usable = fc.step_s <= 3600 and "fallback" not in str(fc.provenance.get("kind"))
        if usable and fc.horizon_s() >= MIN_HISTORY_DAYS * 86400:
            return fc  # a real series, not an annual average standing in for one
    except Exception:  # any provider failure: fall back to a trace
        pass
    path = find_trace(zone, settings.trace_paths)
    if path is None:
        raise ScheduleError(f"no history for {zone}: no provider answered and no trace file")
    return load_trace_forecast(path)


def todays_plan(req: AdviceRequest, now: datetime) -> tuple[Plan | None, str]:
    """What ``carbonpipe schedule`` would decide right now (None and why when it cannot)."""
    from carbonpipe.scheduling.cli import _forecasts, decide, run_parser

    argv = ["--duration", str(req.duration_s), "--deadline", str(req.deadline_s), "--dry-run"]
    argv += ["--zone", req.zone] if req.zone else []
    argv += ["--trace", req.trace] if req.trace else []
    argv += ["--interruptible"] if req.interruptible else []
    ns = run_parser().parse_args(argv)
    try:
        return decide(ns, _forecasts(ns, now, lambda: now), now), ""
    except (ScheduleError, ValueError, OSError) as exc:
        return None, str(exc)


@dataclass(frozen=True)
class Advice:
    distribution: SavingsDistribution
    plan: Plan | None
    plan_note: str
    now: datetime

    @property
    def text(self) -> str:
        return advice_text(self.distribution, self.plan, self.plan_note, self.now)

    def to_dict(self) -> dict[str, Any]:
        return advice_dict(self.distribution, self.plan, self.plan_note, self.now)


def advise(req: AdviceRequest, now: datetime | None = None) -> Advice:
    """Service: distribution over the history plus today's plan."""
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    dist = savings_distribution(history_forecast(req, now), req.duration_s, req.deadline_s,
                                interruptible=req.interruptible)
    plan, note = todays_plan(req, now)
    return Advice(dist, plan, note, now)


def advise_main(argv: Sequence[str]) -> int:
    ns = advise_parser().parse_args(list(argv))
    try:
        adv = advise(request_from_args(ns))
    except (ScheduleError, ValueError, OSError) as exc:
        print(f"carbonpipe schedule advise: {exc}", file=sys.stderr)
        return 2
    if ns.json:
        print(json.dumps(adv.to_dict(), indent=1, default=str))
    else:
        print(adv.text)
    return 0
