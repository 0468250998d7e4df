"""Policies b (window), c (interruptible) and e (multizone) against brute force.

The brute force integrates the piecewise-constant forecast directly (no cumulative sums, no
sorting). Durations and deadlines are multiples of a quarter slot, so the interruptible LP's
optimum lies on a quarter-slot grid and can be enumerated exactly.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonpipe.scheduling.policies import Forecast, best_window, interruptible, multizone

T0 = datetime(2021, 3, 1, tzinfo=timezone.utc)
STEP = 1800


def make(values: list[float], step: int = STEP, zone: str = "Z") -> Forecast:
    starts = np.datetime64(T0.replace(tzinfo=None), "s") + np.arange(len(values)) * \
        np.timedelta64(step, "s")
    return Forecast(zone, starts, np.asarray(values, dtype=np.float64), step)


def integrate(values: list[float], step: int, a: float, b: float) -> float:
    """gCO2e/kWh x seconds over [a, b) (seconds from T0), by slot overlap."""
    total = 0.0
    for i, v in enumerate(values):
        lo, hi = max(a, i * step), min(b, (i + 1) * step)
        if hi > lo:
            total += v * (hi - lo)
    return total


def brute_window(values: list[float], step: int, dur: float, dl: float) -> float | None:
    costs = [integrate(values, step, i * step, i * step + dur) / dur
             for i in range(len(values))
             if i * step + dur <= min(dl, len(values) * step) + 1e-9]
    return min(costs) if costs else None


def brute_interruptible(values: list[float], step: int, dur: float, dl: float) -> float | None:
    q = 4
    need = round(dur / step * q)
    caps = [max(0, min(q, round((dl - i * step) / step * q))) for i in range(len(values))]
    best = None
    for xs in itertools.product(*(range(c + 1) for c in caps)):
        if sum(xs) == need:
            cost = sum(x / q * v * step for x, v in zip(xs, values, strict=True)) / dur
            best = cost if best is None else min(best, cost)
    return best


def check_plan_bounds(p: object, dur: float, dl: float) -> None:
    from carbonpipe.scheduling.policies import Plan

    assert isinstance(p, Plan)
    assert p.end <= T0 + timedelta(seconds=dl) + timedelta(microseconds=1)
    used = sum((b - a).total_seconds() for a, b in p.segments)
    assert abs(used - dur) < 1e-3
    for (_, b), (a2, _) in itertools.pairwise(p.segments):
        assert b < a2  # merged, ordered, no overlap


values_st = st.lists(st.integers(min_value=0, max_value=600).map(float), min_size=2, max_size=9)


@st.composite
def job(draw: st.DrawFn, max_slots: int = 9) -> tuple[list[float], float, float]:
    vals = draw(values_st if max_slots == 9 else st.lists(
        st.integers(0, 600).map(float), min_size=2, max_size=max_slots))
    n = len(vals)
    dur_q = draw(st.integers(1, 4 * n))
    dl_q = draw(st.integers(dur_q, 4 * n + 4))
    return vals, dur_q * STEP / 4, dl_q * STEP / 4


@settings(max_examples=150, deadline=None)
@given(job())
def test_window_is_optimal(case: tuple[list[float], float, float]) -> None:
    vals, dur, dl = case
    p = best_window(make(vals), dur, dl)
    expect = brute_window(vals, STEP, dur, dl)
    assert expect is not None  # dl >= dur and the forecast holds the job
    assert p.feasible
    assert abs(p.g_per_kwh - expect) < 1e-6
    check_plan_bounds(p, dur, dl)
    assert p.g_per_kwh <= p.now_g_per_kwh + 1e-9


@settings(max_examples=120, deadline=None)
@given(job(max_slots=6))
def test_interruptible_is_optimal(case: tuple[list[float], float, float]) -> None:
    vals, dur, dl = case
    p = interruptible(make(vals), dur, dl)
    expect = brute_interruptible(vals, STEP, dur, dl)
    assert expect is not None and p.feasible
    assert abs(p.g_per_kwh - expect) < 1e-6
    check_plan_bounds(p, dur, dl)
    assert p.g_per_kwh <= best_window(make(vals), dur, dl).g_per_kwh + 1e-9


@settings(max_examples=100, deadline=None)
@given(st.lists(values_st, min_size=1, max_size=3), st.integers(1, 8), st.integers(0, 8))
def test_multizone_is_optimal(zone_values: list[list[float]], dur_q: int, slack_q: int) -> None:
    n = min(len(v) for v in zone_values)
    dur = min(dur_q, 4 * n) * STEP / 4
    dl = dur + slack_q * STEP / 4
    fcs = {f"Z{i}": make(v[:], zone=f"Z{i}") for i, v in enumerate(zone_values)}
    p = multizone(fcs, dur, dl)
    brute = [brute_window(v, STEP, dur, dl) for v in zone_values]
    expect = min(b for b in brute if b is not None)
    assert abs(p.g_per_kwh - expect) < 1e-6
    assert p.now_zone == "Z0"
    assert abs(p.now_g_per_kwh - integrate(zone_values[0], STEP, 0, dur) / dur) < 1e-6
    check_plan_bounds(p, dur, dl)


@settings(max_examples=60, deadline=None)
@given(values_st, st.integers(2, 8))
def test_too_short_deadline_runs_now(vals: list[float], dur_q: int) -> None:
    dur = dur_q * STEP / 4
    for fn in (best_window, interruptible):
        p = fn(make(vals + [0.0] * 3), dur, dur - STEP / 4)
        assert not p.feasible and "shorter than the job" in p.reason
        assert p.start == T0 and p.reduction_pct == 0
