"""The Pipeline health page's figures from the job's stats document and intensity rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dashboard import health_data as hd

NOW = datetime(2026, 12, 2, 12, 0, 30, tzinfo=timezone.utc)


def test_outcomes_and_rates() -> None:
    counts = {"valid": 100, "duplicate": 5, "late": 2, "schema": 1}
    assert hd.dead_lettered(counts) == 3
    assert [r["outcome"] for r in hd.outcome_rows(counts)] == [
        "valid", "of which duplicates (dropped)", "counted", "dead letter: late",
        "dead letter: schema"]
    assert hd.outcome_rows(counts)[2]["events"] == 95
    recent = [{"at": NOW - timedelta(minutes=10), "events": 1000, "counts": {"valid": 1000}},
              {"at": NOW - timedelta(seconds=20), "events": 40, "counts": {"valid": 30}},
              {"at": NOW - timedelta(seconds=5), "events": 60, "counts": {"valid": 60}}]
    assert hd.rate_per_minute(recent, NOW) == 100 / 5
    pm = hd.per_minute(recent)
    assert [(r["events"], r["valid"]) for r in pm] == [(1000, 1000), (100, 90)]


def test_freshness_names_the_slot_in_force_and_the_forecast_reach() -> None:
    t = NOW.replace(second=0)
    rows = [{"zone": "GB", "start": t - timedelta(minutes=30), "end": t, "provider": "uk",
             "kind": "actual"},
            {"zone": "GB", "start": t, "end": t + timedelta(minutes=30), "provider": "uk",
             "kind": "forecast"},
            {"zone": "GB", "start": t + timedelta(hours=1), "end": t + timedelta(hours=2),
             "provider": "uk", "kind": "forecast"}]  # fmt: skip
    (gb,) = hd.freshness(rows, NOW)
    assert gb["latest slot (UTC)"] == t and gb["kind"] == "forecast" and gb["age (min)"] == 0.5
    assert gb["forecast until"] == t + timedelta(hours=2)
