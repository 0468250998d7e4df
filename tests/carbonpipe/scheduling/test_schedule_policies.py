"""Policies on small hand-made forecasts: the cases a reader can check in their head."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from carbonpipe.intensity.model import IntensityPoint
from carbonpipe.scheduling.decisions import expected_vs_measured
from carbonpipe.scheduling.forecast import forecast_from_points, shift_to
from carbonpipe.scheduling.policies import (
    AllowedHours,
    Forecast,
    ScheduleError,
    best_window,
    interruptible,
    multizone,
    threshold_defer,
)

T0 = datetime(2020, 6, 1, tzinfo=timezone.utc)
H = 3600.0


def fc(values: list[float], step_s: int = 3600, zone: str = "XX",
       t0: datetime = T0) -> Forecast:
    start = np.datetime64(t0.replace(tzinfo=None), "s")
    starts = start + np.arange(len(values)) * np.timedelta64(step_s, "s")
    return Forecast(zone, starts, np.asarray(values, dtype=np.float64), step_s)


def test_window_picks_cheapest_contiguous_start() -> None:
    p = best_window(fc([300, 300, 100, 120, 500, 50]), 2 * H, 6 * H)
    assert p.start == T0 + timedelta(hours=2) and p.end == T0 + timedelta(hours=4)
    assert p.g_per_kwh == pytest.approx(110)
    assert p.now_g_per_kwh == pytest.approx(300)
    assert p.reduction_pct == pytest.approx(100 * (1 - 110 / 300))


def test_window_respects_deadline() -> None:
    p = best_window(fc([300, 300, 100, 120, 500, 50, 10]), 1 * H, 5 * H)
    assert p.end <= T0 + timedelta(hours=5)
    assert p.g_per_kwh == pytest.approx(100)


def test_partial_last_slot_is_weighted() -> None:
    p = best_window(fc([10, 10, 1000, 30, 30, 30]), 2.5 * H, 6 * H)
    # start 0: 10 + 10 + 0.5 * 1000 = 520 (dropping the partial slot would pick it: 20);
    # start 3: 30 + 30 + 0.5 * 30 = 75
    assert p.start == T0 + timedelta(hours=3)
    assert p.g_per_kwh == pytest.approx(75 / 2.5)
    assert p.end == T0 + timedelta(hours=5.5)


def test_deadline_shorter_than_job_runs_now_with_reason() -> None:
    p = best_window(fc([300, 100, 100]), 3 * H, 2 * H)
    assert not p.feasible and "shorter than the job" in p.reason
    assert p.start == T0 and p.reduction_pct == 0


def test_forecast_shorter_than_job_is_an_error() -> None:
    with pytest.raises(ScheduleError, match="cannot even score"):
        best_window(fc([300, 100]), 3 * H, 24 * H)


def test_interruptible_takes_greenest_slots_and_beats_window() -> None:
    f = fc([50, 400, 60, 400, 70, 400])
    p = interruptible(f, 3 * H, 6 * H)
    assert [(a - T0, b - T0) for a, b in p.segments] == [
        (timedelta(0), timedelta(hours=1)), (timedelta(hours=2), timedelta(hours=3)),
        (timedelta(hours=4), timedelta(hours=5))]
    assert p.g_per_kwh == pytest.approx(60)
    assert p.g_per_kwh <= best_window(f, 3 * H, 6 * H).g_per_kwh


def test_interruptible_partial_duration() -> None:
    p = interruptible(fc([50, 400, 60, 400]), 1.5 * H, 4 * H)
    assert sum((b - a).total_seconds() for a, b in p.segments) == pytest.approx(1.5 * H)
    assert p.g_per_kwh == pytest.approx((50 + 0.5 * 60) / 1.5)


def test_threshold_runs_now_when_below() -> None:
    p = threshold_defer(fc([100, 50, 50]), 1 * H, 200, 2 * H)
    assert p.start == T0


def test_threshold_waits_for_first_slot_below_then_runs_contiguously() -> None:
    p = threshold_defer(fc([300, 250, 150, 400, 100, 100]), 2 * H, 200, 4 * H)
    assert p.start == T0 + timedelta(hours=2) and len(p.segments) == 1
    assert p.g_per_kwh == pytest.approx(275)  # heuristic: worse than the optimum (100)
    assert p.reduction_pct < best_window(fc([300, 250, 150, 400, 100, 100]), 2 * H,
                                         6 * H).reduction_pct


def test_threshold_gives_up_at_max_delay() -> None:
    p = threshold_defer(fc([300, 300, 300, 300, 100]), 1 * H, 200, 2 * H)
    assert p.start == T0 + timedelta(hours=2)


def test_allowed_hours_mask_local_time_and_dst() -> None:
    # 2020-03-29 is the UK spring-forward day: 03:00 local = 02:00 UTC after the switch.
    f = fc([100.0] * 48, t0=datetime(2020, 3, 28, tzinfo=timezone.utc))
    m = AllowedHours.parse("03:00-22:00", "Europe/London").mask(f.starts, f.step_s)
    assert not m[2] and m[3] and m[21] and not m[22]  # 28th: GMT = UTC
    assert not m[24 + 1] and m[24 + 2] and m[24 + 20] and not m[24 + 21]  # 29th: BST


def test_allowed_hours_wrap_midnight() -> None:
    f = fc([100.0] * 24)
    m = AllowedHours.parse("22:00-06:00").mask(f.starts, f.step_s)
    assert m.tolist() == [h < 6 or h >= 22 for h in range(24)]


def test_window_with_allowed_hours() -> None:
    f = fc([10, 10, 10, 500, 500, 20, 20, 500])
    p = best_window(f, 2 * H, 8 * H, allowed=AllowedHours.parse("03:00-23:00"))
    assert p.start == T0 + timedelta(hours=5)


def test_multizone_picks_zone_and_start() -> None:
    a = fc([300, 300, 300, 300], zone="A")
    b = fc([200, 200, 200, 200, 200, 200, 200, 50], step_s=1800, zone="B")
    p = multizone({"A": a, "B": b}, 1 * H, 4 * H)
    assert p.zone == "B" and p.now_zone == "A"
    assert p.g_per_kwh == pytest.approx(125)
    assert p.start == T0 + timedelta(hours=3)


def test_forecast_from_points_keeps_provenance() -> None:
    pts = [IntensityPoint("GB", T0 + timedelta(minutes=30 * i),
                          T0 + timedelta(minutes=30 * (i + 1)), 100.0 + i, "uk", "forecast")
           for i in range(4)]
    f = forecast_from_points(pts)
    assert f.step_s == 1800 and f.values.tolist() == [100, 101, 102, 103]
    assert f.provenance["provider"] == "uk" and f.provenance["kind"] == "forecast"
    with pytest.raises(ScheduleError, match="mixes signals"):
        forecast_from_points([*pts, IntensityPoint("GB", T0 + timedelta(hours=2),
                                                   T0 + timedelta(hours=3), 1.0, "watttime",
                                                   "forecast", signal="marginal")])


def test_shift_to_now_keeps_costs_exact() -> None:
    f = fc([100, 300, 500])
    s = shift_to(f, T0 + timedelta(minutes=15))
    assert s.t0 == T0 + timedelta(minutes=15)
    assert s.values.tolist() == pytest.approx([150, 350])


def test_expected_vs_measured() -> None:
    p = best_window(fc([300, 100, 100]), 1 * H, 3 * H, power_w=500)
    log = {"decision_id": "d1", "plan": p.to_dict(), "run": None}
    out = expected_vs_measured(log, measured_co2_g=60.0)
    assert out["expected_g"] == pytest.approx(50.0)
    assert out["error_pct"] == pytest.approx(20.0)
    assert out["implied_energy_kwh"] == pytest.approx(0.6)
    assert out["estimated_saved_g"] == pytest.approx(0.6 * 300 - 60)
