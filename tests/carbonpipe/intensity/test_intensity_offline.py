"""Offline trace provider: history for any hour, flagged replay forecast and current."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonpipe.core.timeutil import from_datetime64
from carbonpipe.intensity.errors import NotCovered
from carbonpipe.intensity.offline import TraceProvider
from carbonpipe.intensity.trace import BUNDLED_TRACES_DIR, load_trace

UTC = timezone.utc
SERIES = load_trace(BUNDLED_TRACES_DIR / "us-cal-ciso-2023.csv")
ZONE = "US-CAL-CISO"


@settings(max_examples=60, deadline=None)
@given(i=st.integers(min_value=0, max_value=len(SERIES) - 1))
def test_history_answers_any_hour_of_the_trace_with_its_own_value(i: int) -> None:
    start = from_datetime64(SERIES.starts[i])
    p = TraceProvider({ZONE: SERIES})
    pts = p.history(ZONE, start, start + timedelta(hours=1))
    assert len(pts) == 1
    (pt,) = pts
    assert (pt.start, pt.end) == (start, start + timedelta(hours=1))
    assert pt.carbon_intensity_g_per_kwh == SERIES.values_g_per_kwh[i]
    assert (pt.provider, pt.kind, pt.signal, pt.replayed) == ("trace", "actual", "average", False)


@settings(max_examples=40, deadline=None)
@given(
    i=st.integers(min_value=0, max_value=len(SERIES) - 1),
    minute=st.integers(min_value=0, max_value=59),
)
def test_replay_forecast_for_any_hour_is_flagged_perfect_foresight(i: int, minute: int) -> None:
    trace_t = from_datetime64(SERIES.starts[i])
    now = trace_t.replace(year=2025) + timedelta(minutes=minute)  # 2025: not leap, like 2023
    p = TraceProvider({ZONE: SERIES}, clock=lambda: now)
    fc = p.forecast(ZONE, timedelta(hours=3))
    assert len(fc) in (3, 4)
    assert fc[0].start == now.replace(minute=0)
    assert all(x.kind == "forecast" and x.perfect_foresight and x.replayed for x in fc)
    assert fc[0].carbon_intensity_g_per_kwh == SERIES.values_g_per_kwh[i]
    for k, x in enumerate(fc):
        j = (i + k) % len(SERIES)  # wraps from Dec 31 to Jan 1 of the trace year
        assert x.carbon_intensity_g_per_kwh == SERIES.values_g_per_kwh[j]
    cur = p.current(ZONE)
    assert cur.kind == "actual" and cur.replayed and not cur.perfect_foresight
    assert cur.carbon_intensity_g_per_kwh == SERIES.values_g_per_kwh[i]
    assert "2023-" in cur.source and "replay" in cur.source


def test_forecast_inside_the_trace_is_perfect_foresight_but_not_replayed() -> None:
    now = datetime(2023, 6, 1, 12, 10, tzinfo=UTC)
    fc = TraceProvider({ZONE: SERIES}, clock=lambda: now).forecast(ZONE, timedelta(hours=2))
    assert [x.start.hour for x in fc] == [12, 13, 14]
    assert all(x.perfect_foresight and not x.replayed for x in fc)


def test_history_outside_the_trace_is_replayed_by_hour_of_year() -> None:
    start = datetime(2026, 3, 10, 5, tzinfo=UTC)
    (pt,) = TraceProvider({ZONE: SERIES}).history(ZONE, start, start + timedelta(hours=1))
    assert pt.replayed and pt.kind == "actual"
    assert pt.carbon_intensity_g_per_kwh == SERIES.value_at(datetime(2023, 3, 10, 5, tzinfo=UTC))


def test_lazy_loading_and_not_covered() -> None:
    p = TraceProvider()
    assert p.series("us-cal-ciso").zone == ZONE
    with pytest.raises(NotCovered, match="no trace file"):
        p.current("NL")


def test_shared_gb_trace_via_provider(traces_dir: object) -> None:
    now = datetime(2026, 11, 15, 12, 5, tzinfo=UTC)
    p = TraceProvider(clock=lambda: now)
    cur = p.current("GB")
    assert (cur.start, cur.end - cur.start) == (now.replace(minute=0), timedelta(minutes=30))
    assert "gb-2020.csv" in cur.source
