"""Resolving grid-intensity records into non-overlapping segments (pure)."""

from __future__ import annotations

from spark_jobs.reference import SLOT_S, RefRecord, parse_record, slot_rows, to_segments


def rec(start: int, end: int, v: float, kind: str = "actual", order: int = 0) -> RefRecord:
    return RefRecord("GB", start, end, v, "trace", kind, order)


def test_actual_beats_forecast_and_boundaries_are_exact() -> None:
    segs = to_segments([rec(0, 3600, 200, "forecast", 1), rec(0, 1830, 100, "actual", 2)])
    assert [(s.start_s, s.end_s, s.g_per_kwh, s.kind) for s in segs] == [
        (0, 1830, 100, "actual"),
        (1830, 3600, 200, "forecast"),
    ]


def test_newest_wins_among_equals_and_adjacent_equal_segments_merge() -> None:
    segs = to_segments(
        [rec(0, 600, 1, order=1), rec(0, 600, 2, order=2), rec(600, 900, 2, order=3)]
    )
    assert [(s.start_s, s.end_s, s.g_per_kwh) for s in segs] == [(0, 900, 2)]


def test_gaps_stay_gaps() -> None:
    segs = to_segments([rec(0, 300, 1), rec(900, 1200, 2)])
    assert [(s.start_s, s.end_s) for s in segs] == [(0, 300), (900, 1200)]


def test_slot_rows_cover_every_touched_slot() -> None:
    rows = slot_rows(to_segments([rec(100, 1000, 5)]))
    assert [r[1] for r in rows] == list(range(0, 1000, SLOT_S))
    assert all(r[2] == 100 and r[3] == 1000 for r in rows)


def test_marginal_and_malformed_records_are_not_used() -> None:
    base = (
        '{"zone":"gb","start":"2025-01-01T00:00:00Z","end":"2025-01-01T00:30:00Z",'
        '"carbon_intensity_g_per_kwh":120,"provider":"uk","kind":"actual"'
    )
    ok = parse_record(base + "}", 1)
    assert ok is not None and ok.zone == "GB" and ok.end_s - ok.start_s == 1800
    assert parse_record(base + ',"signal":"marginal"}', 2) is None
    assert parse_record("{not json", 3) is None
    assert parse_record(base.replace("actual", "guess") + "}", 4) is None
