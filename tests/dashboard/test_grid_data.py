"""The Grid page's forecast from the hot store's intensity rows, planned on by the
scheduler's own policy, and the realised savings of scheduled runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dashboard import grid_data as gd

NOW = datetime(2026, 12, 2, 12, 10, tzinfo=timezone.utc)
T0 = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)


def rows(values: list[float], step_min: int = 30) -> list[dict[str, object]]:
    return [{"zone": "GB", "start": T0 + timedelta(minutes=step_min * i),
             "end": T0 + timedelta(minutes=step_min * (i + 1)),
             "carbon_intensity_g_per_kwh": v, "provider": "uk", "kind": "forecast"}
            for i, v in enumerate(values)]  # fmt: skip


def test_the_greenest_window_is_the_schedulers_best_window() -> None:
    zr = gd.zone_rows([*rows([300, 250, 100, 90, 200, 300]), {"zone": "FR", "start": T0}], "GB")
    assert gd.current(zr, NOW)["carbon_intensity_g_per_kwh"] == 300  # type: ignore[index]
    fc = gd.forecast(zr, NOW, timedelta(hours=24))
    assert fc is not None and fc.step_s == 1800 and len(fc.values) == 6
    assert fc.provenance == {"provider": "uk", "kind": "forecast"}
    plan = gd.greenest(fc, 3600, 24 * 3600)
    assert plan is not None and plan.g_per_kwh == pytest.approx(95.0)
    assert plan.start == T0 + timedelta(hours=1)


def test_a_gap_ends_the_forecast_and_no_slots_give_none() -> None:
    r = rows([100, 200, 300])
    del r[1]
    fc = gd.forecast(r, NOW, timedelta(hours=24))
    assert fc is not None and len(fc.values) == 1
    assert gd.forecast([], NOW, timedelta(hours=24)) is None


def test_savings_of_a_scheduled_run() -> None:
    log = {"decision_id": "d1", "plan": {"zone": "GB", "policy": "window",
           "expected_g_per_kwh": 100.0, "now_g_per_kwh": 200.0, "reduction_pct": 50.0}}
    (row,) = gd.savings_rows([({"run_id": "r", "co2_g": 10.0}, log)])
    assert row["measured (g)"] == 10.0 and row["saved vs start now (g)"] == pytest.approx(10.0)
