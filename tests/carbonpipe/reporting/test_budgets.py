"""Budgets (pure): UTC period boundaries, usage from day buckets, forecast, crossings."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from carbonpipe.reporting.budgets import (
    Budget,
    Scope,
    bucket_ids,
    crossings,
    env_budgets,
    evaluate,
    parse_scope,
    period_of,
)


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=timezone.utc)


@pytest.mark.parametrize(("period", "now", "key", "start", "end"), [
    ("day", utc(2026, 12, 31, 23, 59), "2026-12-31", utc(2026, 12, 31), utc(2027, 1, 1)),
    ("month", utc(2026, 12, 2, 13), "2026-12", utc(2026, 12, 1), utc(2027, 1, 1)),
    ("month", utc(2028, 2, 29, 12), "2028-02", utc(2028, 2, 1), utc(2028, 3, 1)),
    ("quarter", utc(2026, 12, 31, 23), "2026-Q4", utc(2026, 10, 1), utc(2027, 1, 1)),
    ("quarter", utc(2026, 4, 1), "2026-Q2", utc(2026, 4, 1), utc(2026, 7, 1)),
    ("quarter", utc(2026, 3, 31, 23, 59, 59), "2026-Q1", utc(2026, 1, 1), utc(2026, 4, 1)),
    ("year", utc(2026, 7, 1), "2026", utc(2026, 1, 1), utc(2027, 1, 1)),
    ("all", utc(2026, 7, 1), "all", None, None),
])  # fmt: skip
def test_periods_are_utc_calendar_periods(period: str, now: datetime, key: str,
                                          start: datetime | None, end: datetime | None) -> None:
    p = period_of(period, now)
    assert (p.key, p.start, p.end) == (key, start, end)


def test_a_local_time_is_placed_in_its_utc_period() -> None:
    from datetime import timedelta

    east = timezone(timedelta(hours=2))
    assert period_of("month", datetime(2027, 1, 1, 1, 0, tzinfo=east)).key == "2026-12"


def test_scopes_parse_and_print_back() -> None:
    for text, want in (("user:alice", Scope("user", "alice")), ("org", Scope("all", "all")),
                       ("tag:project=vision", Scope("tag", "project=vision"))):
        assert parse_scope(text) == want and str(want) == text
    for bad in ("user:", "tag:project", "team:x", "org:x", "tag:=x"):
        with pytest.raises(ValueError, match="scope"):
            parse_scope(bad)


def test_a_budget_checks_its_fields() -> None:
    with pytest.raises(ValueError, match="limit"):
        Budget(Scope("user", "a"), "month", "co2_g", 0)
    with pytest.raises(ValueError, match="period"):
        Budget(Scope("user", "a"), "week", "co2_g", 1)
    assert Budget(parse_scope("tag:project=vision"), "quarter", "energy_kwh", 10).id == (
        "tag:project=vision/quarter/kwh")


def day(d: str, total: float, **by: float) -> dict[str, object]:
    entries = [{"dim": k.split("__")[0], "value": k.split("__")[1], "co2_g": v}
               for k, v in by.items()]  # fmt: skip
    return {"_id": d, "total": {"co2_g": total, "energy_kwh": total / 100}, "by": entries}


DAYS = [day("2026-11-30", 999, user__alice=999),  # the month before: never counted
        day("2026-12-01", 300, user__alice=100),
        day("2026-12-02", 500, user__alice=300)]  # fmt: skip
# What the job keeps beside them: their months (a month, quarter or year reads these)
MONTHS = [day("2026-11", 999, user__alice=999), day("2026-12", 800, user__alice=400)]
BUCKETS = DAYS + MONTHS


def test_usage_sums_the_periods_days_for_the_scope_and_forecasts_at_the_rate_so_far() -> None:
    now = utc(2026, 12, 2, 12)  # 1.5 of 31 days elapsed
    alice = evaluate(Budget(Scope("user", "alice"), "month", "co2_g", 1000), BUCKETS, now)
    assert alice.used == pytest.approx(400) and alice.fraction == pytest.approx(0.4)
    assert alice.forecast == pytest.approx(400 * 31 / 1.5)
    org = evaluate(Budget(Scope("all", "all"), "month", "energy_kwh", 10), BUCKETS, now)
    assert org.used == pytest.approx(8.0) and org.crossed_pct() == (80,)
    year = evaluate(Budget(Scope("user", "alice"), "year", "co2_g", 1000), BUCKETS, now)
    assert year.used == pytest.approx(1399) and year.crossed_pct() == (80, 100)
    nobody = evaluate(Budget(Scope("user", "bob"), "month", "co2_g", 1), BUCKETS, now)
    assert nobody.used == 0 and nobody.crossed_pct() == ()
    today = evaluate(Budget(Scope("user", "alice"), "day", "co2_g", 1000), BUCKETS, now)
    assert today.used == pytest.approx(300)  # the day bucket, not its month
    ever = evaluate(Budget(Scope("user", "alice"), "all", "co2_g", 1e6), BUCKETS, now)
    assert ever.used == pytest.approx(1399)  # every month, each counted once
    assert evaluate(alice.budget, DAYS, now).used == 0  # a month is read from its bucket


def test_pue_scales_usage() -> None:
    now = utc(2026, 12, 2, 12)
    s = evaluate(Budget(Scope("user", "alice"), "month", "co2_g", 1000), BUCKETS, now, pue=1.5)
    assert s.used == pytest.approx(600)


def test_crossings_have_one_id_per_budget_period_and_threshold() -> None:
    now = utc(2026, 12, 2, 12)
    s = evaluate(Budget(Scope("user", "alice"), "year", "co2_g", 1000), BUCKETS, now)
    cs = crossings(s, now)
    assert [c.id for c in cs] == ["user:alice/year/g|2026|80", "user:alice/year/g|2026|100"]
    later = crossings(evaluate(s.budget, BUCKETS, utc(2026, 12, 3)), utc(2026, 12, 3))
    assert [c.id for c in later] == [c.id for c in cs]  # the same crossing, the same id
    rec = cs[0].record()
    assert rec["alert_id"] == cs[0].id and rec["threshold_pct"] == 80 and rec["unit"] == "gCO2e"
    assert "user:alice" in rec["text"] and "80 %" in rec["text"]


def test_env_budgets_are_all_time_user_budgets() -> None:
    bs = env_budgets({"alice": 500.0, "zero": 0.0})
    assert [(b.id, b.origin) for b in bs] == [("user:alice/all/g", "env")]
    history = ["2025-06-03", "2026-09-30", "2026-10-02", "2026-12-01", "2026-12-02"]
    assert bucket_ids(bs, utc(2026, 12, 2), history) == ["2025-06", "2026-09", "2026-10",
                                                          "2026-12"]  # all time: every month
    month = Budget(Scope("user", "a"), "month", "co2_g", 1)
    quarter = Budget(Scope("user", "a"), "quarter", "co2_g", 1)
    daily = Budget(Scope("user", "a"), "day", "co2_g", 1)
    assert bucket_ids([month, quarter, daily], utc(2026, 12, 2, 9), history) == [
        "2026-10", "2026-12", "2026-12-02"]  # Q4's months with figures, and today


def test_a_tag_budget_counts_its_tags_entries_only() -> None:
    days = [{"_id": "2026-12-01", "total": {"co2_g": 90.0}, "by": [
        {"dim": "tag", "value": "project=vision", "co2_g": 40.0},
        {"dim": "tag", "value": "project=nlp", "co2_g": 50.0},
        {"dim": "user", "value": "project=vision", "co2_g": 7.0}]}]  # fmt: skip
    b = Budget(parse_scope("tag:project=vision"), "day", "co2_g", 50)
    s = evaluate(b, days, utc(2026, 12, 1, 12))
    assert s.used == pytest.approx(40.0) and s.crossed_pct() == (80,)
