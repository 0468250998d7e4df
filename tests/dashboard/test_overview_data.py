"""The Overview's figures from both sources (day rollups, runs) computed the same way."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from dashboard import overview_data as od

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)


def run(rid: str, user: str, model: str, start: datetime, kwh: float, g: float,
        **kw: object) -> dict[str, object]:
    return {"run_id": rid, "user_id": user, "model_name": model, "start": start,
            "energy_kwh": kwh, "co2_g": g, "measured_kwh": kwh, **kw}  # fmt: skip


RUNS = [
    run("a", "alice", "vit", NOW - timedelta(hours=30), 1.0, 100.0, zones=["GB"], hosts=["h1"],
        tags={"project": "vision"}),
    run("b", "alice", "bert", NOW - timedelta(hours=2), 2.0, 50.0, zones=["FR", "GB"],
        hosts=["h2"], tags={"project": "nlp"}, fallback_kwh=0.5),
    run("c", "bob", "vit", NOW - timedelta(hours=1), 4.0, 400.0, zones=["DE"], hosts=["h1"],
        gpu_hours=2.5),
]  # fmt: skip


def test_periods_and_the_previous_one() -> None:
    p = od.period_for("last 7 days", NOW)
    assert p.until - p.since == timedelta(days=7) and p.previous().until == p.since
    c = od.period_for(od.CUSTOM, NOW, (date(2026, 11, 5), date(2026, 11, 1)))
    assert c.since == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert c.until == datetime(2026, 11, 6, tzinfo=timezone.utc) and c.days() == 5
    with pytest.raises(ValueError, match="custom"):
        od.period_for(od.CUSTOM, NOW)


def test_run_entries_total_group_and_rank() -> None:
    e = od.run_entries(RUNS)
    t = od.totals(e)
    assert t["energy_kwh"] == 7.0 and t["co2_g"] == 550.0 and t["runs"] == 3
    assert t["gpu_hours"] == 2.5
    assert od.top(e, "user") == [
        {"user": "bob", "runs": 1, "energy_kwh": 4.0, "co2_g": 400.0},
        {"user": "alice", "runs": 2, "energy_kwh": 3.0, "co2_g": 150.0}]
    assert [r["project"] for r in od.top(e, "tag:project")] == ["vision", "nlp"]
    # b ran in two zones: it counts in both bars (said on the page)
    assert {r["zone"]: r["co2_g"] for r in od.top(e, "zone")} == {"DE": 400.0, "GB": 150.0,
                                                                   "FR": 50.0}
    days = od.per_day(e, "model")
    assert days == [{"day": "2026-12-01", "model": "vit", "co2_g": 100.0},
                    {"day": "2026-12-02", "model": "bert", "co2_g": 50.0},
                    {"day": "2026-12-02", "model": "vit", "co2_g": 400.0}]  # fmt: skip
    # beyond the largest groups of the period, the rest is one stacked group (sums kept)
    folded = od.per_day(e, "model", groups=1)
    assert folded == [{"day": "2026-12-01", "model": "vit", "co2_g": 100.0},
                      {"day": "2026-12-02", "model": od.OTHER, "co2_g": 50.0},
                      {"day": "2026-12-02", "model": "vit", "co2_g": 400.0}]  # fmt: skip
    assert od.per_day(e, "model", groups=2) == days
    s = od.shares(t)
    assert s["measured"] == 100.0 and s["fallback"] == pytest.approx(100 * 0.5 / 7)
    assert od.shares(od.totals([]))["measured"] is None


def test_rollup_entries_keep_the_days_of_the_period() -> None:
    days = [
        {"_id": "2026-11-20", "total": {"energy_kwh": 9.0, "co2_g": 9.0, "runs": 9}, "by": []},
        {"_id": "2026-12-01", "total": {"energy_kwh": 1.0, "co2_g": 100.0, "runs": 1,
                                        "gpu_hours": 0.75},
         "by": [{"dim": "user", "value": "alice", "energy_kwh": 1.0, "co2_g": 100.0, "runs": 1},
                {"dim": "tag", "value": "project=vision", "co2_g": 100.0, "runs": 1}]},
    ]  # fmt: skip
    e = od.rollup_entries(days, od.period_for("last 7 days", NOW))
    assert od.totals(e)["co2_g"] == 100.0 and od.totals(e)["runs"] == 1
    assert od.totals(e)["gpu_hours"] == 0.75  # the 2026-11-20 bucket is outside the period
    assert od.top(e, "tag:project") == [{"project": "vision", "runs": 1,
                                         "energy_kwh": 0.0, "co2_g": 100.0}]  # fmt: skip
    assert od.tag_keys(x.value for x in e if x.dim == "tag") == ["project"]


def test_filters_and_change() -> None:
    f = od.Filters(user="alice", zone="GB")
    assert f.active() == {"user": "alice", "zone": "GB"} and not od.Filters().active()
    assert [r["run_id"] for r in RUNS if f.matches(r)] == ["a", "b"]  # zone/host: matches
    w = f.run_filter(od.period_for("last 24 h", NOW))
    assert w.user == "alice" and w.since == NOW - timedelta(hours=24)
    assert od.change_pct(150.0, 100.0) == 50.0 and od.change_pct(1.0, 0.0) is None
    opts = od.options([{"dim": "user", "value": "b"}, {"dim": "user", "value": "a"},
                       {"dim": "all", "value": "all"}])  # fmt: skip
    assert opts["user"] == ["a", "b"] and opts["zone"] == []


def test_own_scope_choices_come_from_the_viewers_runs_only() -> None:
    mine = [r for r in RUNS if r["user_id"] == "alice"]
    opts = od.options_from_runs(mine)
    assert opts["user"] == ["alice"] and opts["model"] == ["bert", "vit"]
    assert opts["zone"] == ["FR", "GB"] and "DE" not in opts["zone"]
    assert opts["tag"] == ["project=nlp", "project=vision"]


def test_days_of_a_period_and_which_are_settled() -> None:
    p = od.Period(datetime(2026, 11, 29, 23, tzinfo=timezone.utc), NOW)
    assert od.day_ids(p) == ["2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02"]
    assert od.day_ids(od.period_for(od.CUSTOM, NOW, (date(2026, 1, 1), date(2026, 1, 1)))) == [
        "2026-01-01"]
    week = 7 * 86_400.0
    assert od.settled("2026-11-20", NOW, week)  # ended 11 days ago: no event can reach it
    assert not od.settled("2026-11-25", NOW, week)  # ended 6.5 days ago: late events still can


def test_a_long_range_reads_whole_months_from_month_buckets_with_the_same_figures() -> None:
    """A year is charted per month: its whole months come from ``months`` and only the days
    at its edges from ``days``; the figures equal those summed from every day bucket."""
    year = od.period_for(od.CUSTOM, NOW, (date(2025, 12, 3), date(2026, 12, 2)))
    assert od.granularity(year) == "month"
    assert od.granularity(od.period_for("last 30 days", NOW)) == "day"
    months, days = od.bucket_ids(year)
    assert months == [f"2026-{m:02d}" for m in range(1, 12)]
    assert days[0] == "2025-12-03" and days[-1] == "2026-12-02" and len(days) == 29 + 2
    assert od.bucket_ids(od.period_for("last 7 days", NOW)) == (
        [], od.day_ids(od.period_for("last 7 days", NOW)))

    def bucket(id_: str, kwh: float, user: str) -> dict[str, object]:
        by = [{"dim": "user", "value": user, "energy_kwh": kwh, "co2_g": 10 * kwh, "runs": 1}]
        return {"_id": id_, "total": {"energy_kwh": kwh, "co2_g": 10 * kwh, "runs": 1}, "by": by}

    every_day = od.day_ids(od.period_for(od.CUSTOM, NOW, (date(2025, 11, 1), date(2026, 12, 2))))
    day_docs = [bucket(d, 1.0 + i % 3, "alice" if i % 2 else "bob")
                for i, d in enumerate(every_day)]  # fmt: skip
    month_docs = []
    for m in sorted({d[:7] for d in every_day}):
        mine = [b for b in day_docs if str(b["_id"]).startswith(m)]
        per_user: dict[str, float] = {}
        for b in mine:
            for e in b["by"]:  # type: ignore[attr-defined]
                per_user[e["value"]] = per_user.get(e["value"], 0.0) + e["energy_kwh"]
        month_docs.append({"_id": m, "month": m,
                           "total": {"energy_kwh": sum(per_user.values()),
                                     "co2_g": 10 * sum(per_user.values()), "runs": len(mine)},
                           "by": [{"dim": "user", "value": u, "energy_kwh": k, "co2_g": 10 * k,
                                   "runs": sum(1 for b in mine if b["by"][0]["value"] == u)}  # type: ignore[index]
                                  for u, k in per_user.items()]})  # fmt: skip
    wanted = {*months, *days}
    read = [b for b in [*day_docs, *month_docs] if b["_id"] in wanted]
    assert len(read) == 11 + 31  # not 365
    e = od.rollup_entries(read, year)
    in_year = [b for b in day_docs if "2025-12-03" <= str(b["_id"]) <= "2026-12-02"]
    assert od.totals(e)["energy_kwh"] == pytest.approx(sum(
        b["total"]["energy_kwh"] for b in in_year))  # type: ignore[index]
    assert od.totals(e)["runs"] == len(in_year) == 365
    assert {r["user"]: r["energy_kwh"] for r in od.top(e, "user")} == pytest.approx({
        u: sum(b["by"][0]["energy_kwh"] for b in in_year if b["by"][0]["value"] == u)  # type: ignore[index]
        for u in ("alice", "bob")})
    per_month = od.per_day(e, "user")
    assert sorted({r["day"] for r in per_month}) == ["2025-12", *months, "2026-12"]
    runs = od.run_entries(RUNS, od.granularity(year))
    assert {x.day for x in runs} == {"2026-12"}


def test_a_month_is_settled_once_its_last_day_is() -> None:
    week = 7 * 86_400.0
    assert od.settled("2026-10", NOW, week)  # ended Nov 1, a month ago
    assert not od.settled("2026-11", NOW, week)  # ended Dec 1: late events can still reach it
    assert od.settled("2026-11", NOW + timedelta(days=8), week)
