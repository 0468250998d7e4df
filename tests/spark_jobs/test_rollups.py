"""The read models' pure merges (``spark_jobs.rollups``): sums carried from version to version,
a run counted once, index entries moved with their run, series windows replaced by key."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from carbonpipe.core.versions import series_days, series_id
from spark_jobs import rollups

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def window(run: str, user: str, start_s: int, kwh: float, **kw: Any) -> dict[str, Any]:
    return {"run_id": run, "user_id": user, "model_name": "m", "host": "h", "zone": "GB",
            "window_start_s": start_s, "energy_kwh": kwh, "co2_g": 100 * kwh, "n_events": 1,
            **kw}  # fmt: skip


def test_deltas_sum_per_value_of_the_window_day_and_count_a_new_run_on_its_start_day() -> None:
    rows = [window("a", "alice", T0, 0.1), window("b", "bob", T0 + 86_400, 0.2,
                                                   tags={"project": "x"})]  # fmt: skip
    new = {"b": {"run_id": "b", "user_id": "bob", "model_name": "m", "first_ts_s": T0 + 86_400,
                 "hosts": ["h"], "zones": ["GB"], "tags": {"project": "x"}}}  # fmt: skip
    d = rollups.deltas(rows, new)
    assert d["2026-01-01"][("user", "alice")]["energy_kwh"] == pytest.approx(0.1)
    assert "runs" not in d["2026-01-01"][("user", "alice")]  # a was seen before
    day2 = d["2026-01-02"]
    assert day2[rollups.ALL]["energy_kwh"] == pytest.approx(0.2) and day2[rollups.ALL]["runs"] == 1
    assert day2[("tag", "project=x")]["runs"] == 1 and day2[("host", "h")]["runs"] == 1


def test_day_and_total_carry_their_sums_from_version_to_version() -> None:
    first = rollups.deltas([window("a", "alice", T0, 0.1)], {})["2026-01-01"]
    second = rollups.deltas([window("a", "alice", T0 + 60, 0.3)], {})["2026-01-01"]
    v1 = rollups.merge_day(None, "2026-01-01", first, 1)
    v2 = rollups.merge_day(v1, "2026-01-01", second, 2)
    assert v2["total"]["energy_kwh"] == pytest.approx(0.4) and v2["batch_id"] == 2
    alice = next(e for e in v2["by"] if e["dim"] == "user")
    assert alice["value"] == "alice" and alice["energy_kwh"] == pytest.approx(0.4)
    t1 = rollups.merge_total(None, "all|all", {"2026-01-02": {"energy_kwh": 1.0}}, 1)
    t2 = rollups.merge_total(t1, "all|all", {"2026-01-01": {"energy_kwh": 2.0, "runs": 1}}, 2)
    assert t2["energy_kwh"] == 3.0 and t2["runs"] == 1
    assert t2["days"] == ["2026-01-01", "2026-01-02"] and t2["first_day"] == "2026-01-01"
    tag = rollups.merge_total(None, "tag|k=a|b", {"2026-01-01": {"energy_kwh": 1.0}}, 1)
    assert (tag["dim"], tag["value"]) == ("tag", "k=a|b") and "days" not in tag


def test_gpu_hours_roll_up_per_day_and_value_and_carry_over_versions() -> None:
    first = rollups.deltas([window("a", "alice", T0, 0.1, gpu_hours=0.5)], {})["2026-01-01"]
    second = rollups.deltas([window("b", "bob", T0 + 60, 0.1, gpu_hours=1.25)], {})["2026-01-01"]
    v2 = rollups.merge_day(rollups.merge_day(None, "2026-01-01", first, 1), "2026-01-01", second, 2)
    assert "gpu_hours" in rollups.rolled()
    assert v2["total"]["gpu_hours"] == pytest.approx(1.75)
    by = {(e["dim"], e["value"]): e for e in v2["by"]}
    assert by[("user", "bob")]["gpu_hours"] == pytest.approx(1.25)
    total = rollups.merge_total(None, "user|alice", {"2026-01-01": first[("user", "alice")]}, 1)
    assert total["gpu_hours"] == pytest.approx(0.5)


def test_index_entries_move_with_their_run_and_series_windows_are_replaced_by_key() -> None:
    run = {"run_id": "a", "user_id": "u", "model_name": "m", "tags": {}, "start": None,
           "energy_kwh": 9.0}  # fmt: skip
    hour = rollups.merge_index(None, "2026-01-01T05", {"a": run}, 1)
    assert hour["runs"] == [{k: run[k] for k in rollups.INDEX_FIELDS}]  # identity, no totals
    assert rollups.merge_index(hour, "2026-01-01T05", {"a": None}, 2)["runs"] == []
    w = {"window_start_s": T0, "host": "h", "energy_kwh": 1.0}
    sid = series_id("a|b", T0)  # a run id may hold the separator
    s1 = rollups.merge_series(None, sid, {"k1": w, "k0": {**w, "window_start_s": T0 - 60}}, 1)
    s2 = rollups.merge_series(s1, sid, {"k1": {**w, "energy_kwh": 2.0}}, 2)
    assert [x["key"] for x in s2["windows"]] == ["k0", "k1"]
    assert s2["windows"][1]["energy_kwh"] == 2.0 and s2["batch_id"] == 2
    assert (s2["_id"], s2["run_id"], s2["day"]) == (sid, "a|b", rollups.day_of(T0))


def test_a_runs_series_is_one_document_per_utc_day_of_its_windows() -> None:
    t = datetime(2026, 3, 1, 23, 59, 30, tzinfo=timezone.utc)
    assert series_id("r", t.timestamp()) == "r|2026-03-01"
    assert series_id("r", t.timestamp() + 30) == "r|2026-03-02"
    # from the day before the start (a window may start before the first event) to the end
    assert series_days("r", t, t + timedelta(days=2)) == [
        "r|2026-02-28", "r|2026-03-01", "r|2026-03-02", "r|2026-03-03"]
    naive = datetime(2026, 3, 1, 12)  # as a driver without tz_aware returns it: UTC
    assert series_days("r", naive, naive) == ["r|2026-02-28", "r|2026-03-01"]


def test_a_month_bucket_is_the_sum_of_its_day_buckets_over_batches() -> None:
    """Windows on three days of two months in two batches: each month's bucket equals its
    days' buckets summed, per value and in total; another month is not touched."""
    batches = [
        [window("a", "alice", T0, 0.1), window("b", "bob", T0 + 86_400, 0.2, gpu_hours=1.0)],
        [window("a", "alice", T0 + 60, 0.3), window("c", "carol", T0 + 31 * 86_400, 0.5)],
    ]
    days: dict[str, Any] = {}
    months: dict[str, Any] = {}
    for batch_id, rows in enumerate(batches, start=1):
        d = rollups.deltas(rows, {})
        for k, delta in d.items():
            days[k] = rollups.merge_day(days.get(k), k, delta, batch_id)
        for k, delta in rollups.by_month(d).items():
            months[k] = rollups.merge_month(months.get(k), k, delta, batch_id)
    assert sorted(months) == ["2026-01", "2026-02"]
    assert months["2026-01"]["month"] == "2026-01" and "day" not in months["2026-01"]
    assert months["2026-02"]["batch_id"] == 2
    for month, doc in months.items():
        mine = [b for k, b in days.items() if k.startswith(month)]
        for figure in ("energy_kwh", "co2_g", "gpu_hours"):
            assert doc["total"].get(figure, 0.0) == pytest.approx(
                sum(b["total"].get(figure, 0.0) for b in mine))
        by = {(e["dim"], e["value"]): e["energy_kwh"] for e in doc["by"]}
        summed: dict[tuple[str, str], float] = {}
        for b in mine:
            for e in b["by"]:
                summed[(e["dim"], e["value"])] = summed.get((e["dim"], e["value"]), 0.0) + (
                    e["energy_kwh"])
        assert by == pytest.approx(summed)
    assert months["2026-01"]["total"]["energy_kwh"] == pytest.approx(0.6)
    # a store written before months existed: the same buckets, summed from its days
    migrated = {m["_id"]: m for m in rollups.months_from_days(days.values())}
    assert sorted(migrated) == sorted(months)
    for k, m in migrated.items():
        assert m["batch_id"] == months[k]["batch_id"]
        assert m["total"] == pytest.approx(months[k]["total"])
        assert [(e["dim"], e["value"]) for e in m["by"]] == [
            (e["dim"], e["value"]) for e in months[k]["by"]]
