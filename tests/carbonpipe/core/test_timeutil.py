"""One ISO parser/formatter and one duration parser for the whole project."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from carbonpipe.core.timeutil import (
    floor_time,
    parse_duration,
    parse_duration_s,
    parse_iso,
    utc_iso,
    utc_iso_min,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("4h", 14400), ("90m", 5400), ("1h30m", 5400), ("2.5h", 9000), ("45s", 45), ("1d", 86400),
     (" 2D ", 172800), (".5h", 1800)],
)  # fmt: skip
def test_durations_need_a_unit(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["90", "24", "", "4 hours", "h", "4h please", "-1h"])
def test_bare_numbers_and_junk_are_refused_with_the_units(text: str) -> None:
    with pytest.raises(ValueError, match="45s, 90m, 4h") as err:
        parse_duration_s(text)
    if text in ("90", "24"):
        assert "bare number" in str(err.value)


@pytest.mark.parametrize(
    "text",
    ["2026-01-02T03:04:05Z", "2026-01-02T03:04:05+00:00", "2026-01-02T04:04:05+01:00",
     "2026-01-02T03:04:05", "2026-01-02 03:04:05z"],
)  # fmt: skip
def test_iso_forms_parse_to_the_same_aware_utc_instant(text: str) -> None:
    got = parse_iso(text)
    assert got == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert got.tzinfo is timezone.utc


def test_formatting_round_trips_and_refuses_naive_times() -> None:
    ts = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    assert utc_iso(ts) == "2026-01-02T03:04:05.678Z"
    assert parse_iso(utc_iso(ts)) == ts.replace(microsecond=678000)
    assert utc_iso_min(ts) == "2026-01-02T03:04Z"
    with pytest.raises(ValueError, match="naive"):
        utc_iso(datetime(2026, 1, 2))


def test_floor_time_aligns_to_the_epoch() -> None:
    ts = datetime(2026, 1, 2, 3, 44, 5, tzinfo=timezone.utc)
    assert floor_time(ts, timedelta(minutes=30)) == datetime(2026, 1, 2, 3, 30, tzinfo=timezone.utc)
