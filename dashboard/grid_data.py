"""The Grid & scheduling page's figures (pure): the intensity the job folded from the feed,
as a forecast the scheduler's own policy plans on (``carbonpipe.scheduling.policies``), and
the realised savings of scheduled runs (``carbonpipe.scheduling.decisions``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from carbonpipe.scheduling.policies import Forecast, Plan, ScheduleError, best_window


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def zone_rows(rows: Sequence[Mapping[str, Any]], zone: str) -> list[Mapping[str, Any]]:
    return sorted((r for r in rows if r.get("zone") == zone and isinstance(r.get("start"),
                   datetime)), key=lambda r: _utc(r["start"]))  # fmt: skip


def current(rows: Sequence[Mapping[str, Any]], now: datetime) -> Mapping[str, Any] | None:
    """The slot of one zone in force at ``now`` (its value, provider and kind), if any."""
    for r in rows:
        end = r.get("end")
        if _utc(r["start"]) <= now and (not isinstance(end, datetime) or now < _utc(end)):
            return r
    return None


def forecast(rows: Sequence[Mapping[str, Any]], now: datetime, horizon: timedelta
             ) -> Forecast | None:  # fmt: skip
    """One zone's slots from the one in force at ``now`` to ``now + horizon``, on the grid of
    the shortest slot (each grid point takes the slot in force there); None with no slots."""
    slots = [r for r in rows if isinstance(r.get("end"), datetime) and _utc(r["end"]) > now
             and _utc(r["start"]) < now + horizon]  # fmt: skip
    if not slots:
        return None
    step = int(min((_utc(r["end"]) - _utc(r["start"])).total_seconds() for r in slots))
    if step <= 0:
        return None
    t, last = _utc(slots[0]["start"]), min(_utc(slots[-1]["end"]), now + horizon)
    starts, values, i = [], [], 0
    while t < last:
        while i < len(slots) and _utc(slots[i]["end"]) <= t:
            i += 1
        if i >= len(slots) or _utc(slots[i]["start"]) > t:
            break  # a gap: the forecast stops at the first hole
        starts.append(np.datetime64(t.replace(tzinfo=None), "s"))
        values.append(float(slots[i]["carbon_intensity_g_per_kwh"]))
        t += timedelta(seconds=step)
    if not starts:
        return None
    kinds = sorted({str(r.get("kind")) for r in slots})
    providers = sorted({str(r.get("provider")) for r in slots})
    return Forecast(str(slots[0].get("zone")), np.array(starts), np.array(values), step,
                    {"provider": ", ".join(providers), "kind": ", ".join(kinds)})


def greenest(fc: Forecast, duration_s: float, horizon_s: float) -> Plan | None:
    """The lowest-emission contiguous start for a job of ``duration_s`` within the horizon,
    by the scheduler's ``best_window`` (and what starting at once would be charged)."""
    try:
        return best_window(fc, duration_s, horizon_s)
    except ScheduleError:
        return None


def savings_rows(pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]
                 ) -> list[dict[str, Any]]:  # fmt: skip
    """Per scheduled run (run, its decision log): expected vs measured and what was saved
    against starting at once (``decisions.expected_vs_measured``)."""
    from carbonpipe.scheduling.decisions import expected_vs_measured

    out = []
    for run, log in pairs:
        c = expected_vs_measured(dict(log), float(run.get("co2_g") or 0.0))
        out.append({"run": str(run.get("run_id")), "zone": str(c.get("zone")),
                    "policy": str(c.get("policy")), "expected (g)": c.get("expected_g"),
                    "measured (g)": c.get("measured_g"),
                    "expected reduction (%)": c.get("expected_reduction_pct"),
                    "saved vs start now (g)": c.get("estimated_saved_g")})  # fmt: skip
    return out
