"""The readers' documents (``runs``, ``days``, ``months``, ``totals``, ``series``) against the real
MongoDB-compatible server: one current document per run, rollups equal to the sum of their
runs after a crash inside the MongoDB write and its replay, readers that page by day, and a
driver whose caches stay bounded while 10,000 runs come and go."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from carbonpipe.core.config import Settings
from carbonpipe.core.mongo import mongo_client
from carbonpipe.core.versions import newest
from carbonpipe.query import (
    RunFilter,
    fetch_all_totals,
    fetch_buckets_by_id,
    fetch_days_by_id,
    fetch_runs,
    fetch_totals,
    fetch_windows,
)
from spark_jobs.hot_store import HotStore, Versions
from tests.spark_jobs.test_hot_store_mongo import T0, part

pytestmark = pytest.mark.integration

DAY = 86_400


class CrashError(Exception):
    pass


def p(run: str, user: str, start_s: int, kwh: float, seq: int, **kw: Any) -> dict[str, Any]:
    return {**part(run, start_s, kwh, seq), "user_id": user, **kw}


# Three batches over two UTC days: runs a, b (alice), c (bob, tagged), d (bob, next day).
BATCHES = [
    [p("a", "alice", T0, 0.001, 0), p("b", "alice", T0 + 60, 0.002, 0)],
    [p("a", "alice", T0 + 60, 0.003, 1), p("c", "bob", T0 + 120, 0.004, 0,
                                            tags={"project": "vision"})],
    [p("c", "bob", T0 + DAY + 60, 0.005, 1, tags={"project": "vision"}),
     p("d", "bob", T0 + DAY + 120, 0.006, 0, model_name="big")],
]  # fmt: skip
WANT = {"a": 0.004, "b": 0.002, "c": 0.009, "d": 0.006}


@pytest.fixture()
def settings(unique_topics: Settings) -> Iterator[Settings]:
    yield unique_topics


def check(db: Any) -> None:
    """One current document per run, equal to its newest version; rollups = sums of runs."""
    current = {d["_id"]: d for d in db["runs"].find()}
    versions = {d["run_id"]: d for d in newest(db["run_versions"].find())}
    assert set(current) == set(versions) == set(WANT)
    for run_id, doc in current.items():
        assert doc["energy_kwh"] == pytest.approx(WANT[run_id])
        assert doc["energy_kwh"] == versions[run_id]["energy_kwh"]
    totals = {d["_id"]: d for d in db["totals"].find()}
    assert totals["all|all"]["energy_kwh"] == pytest.approx(sum(WANT.values()))
    assert totals["all|all"]["runs"] == 4 and totals["all|all"]["days"] == [
        "2026-01-01", "2026-01-02"]  # fmt: skip
    for user in ("alice", "bob"):
        mine = sum(d["energy_kwh"] for d in current.values() if d["user_id"] == user)
        assert totals[f"user|{user}"]["energy_kwh"] == pytest.approx(mine)
    assert totals["user|bob"]["runs"] == 2 and totals["model|big"]["runs"] == 1
    days = list(db["days"].find())
    assert sum(d["total"]["energy_kwh"] for d in days) == pytest.approx(sum(WANT.values()))
    months = list(db["months"].find())  # both days are in January: one month, their sum
    assert [m["_id"] for m in months] == ["2026-01"]
    assert months[0]["total"]["energy_kwh"] == pytest.approx(sum(WANT.values()))
    assert months[0]["total"]["runs"] == 4
    for user in ("alice", "bob"):
        in_days = sum(e["energy_kwh"] for d in days for e in d["by"]
                      if (e["dim"], e["value"]) == ("user", user))  # fmt: skip
        in_month = [e for e in months[0]["by"] if (e["dim"], e["value"]) == ("user", user)]
        assert in_month[0]["energy_kwh"] == pytest.approx(in_days)
    listed = [r["run_id"] for d in db["run_index"].find() for r in d["runs"]]
    assert sorted(listed) == sorted(WANT)  # each run in exactly one bucket: its start hour


def test_rollups_equal_their_runs_after_a_crash_inside_the_mongo_write(
    settings: Settings,
) -> None:
    store = HotStore(settings.mongo_uri, settings.mongo_db)
    store.write_batch(0, BATCHES[0], {"valid": 2})
    store.write_batch(1, BATCHES[1], {"valid": 2})

    def crash(point: str) -> None:
        if point == "in_mongo":
            raise CrashError(point)

    store.fault = crash  # versions of batch 2 written, read models not
    with pytest.raises(CrashError):
        store.write_batch(2, BATCHES[2], {"valid": 2})
    store.close()
    again = HotStore(settings.mongo_uri, settings.mongo_db)  # the restarted job replays 2
    try:
        again.write_batch(2, BATCHES[2], {"valid": 2})
        check(again.db)
        again.write_batch(2, BATCHES[2], {"valid": 2})  # a second replay: still once
        check(again.db)
    finally:
        again.close()


def test_a_store_from_before_month_buckets_gets_them_from_its_days(settings: Settings) -> None:
    """An upgrade: a store whose job kept days but no months. The new job sums them from the
    days once, then adds its batches: the month holds the whole history, not only the new."""
    store = HotStore(settings.mongo_uri, settings.mongo_db)
    store.write_batch(0, BATCHES[0], {"valid": 2})
    store.write_batch(1, BATCHES[1], {"valid": 2})
    store.close()
    db = mongo_client(settings.mongo_uri)[settings.mongo_db]
    db["months"].drop()
    db["migrations"].drop()  # as the older job left it
    again = HotStore(settings.mongo_uri, settings.mongo_db)
    try:
        again.write_batch(2, BATCHES[2], {"valid": 2})
        check(again.db)
        assert again.db["migrations"].find_one({"_id": "months_from_days"})["months"] == 1
    finally:
        again.close()
    upgraded_again = HotStore(settings.mongo_uri, settings.mongo_db)  # once: not summed twice
    try:
        upgraded_again.write_batch(3, [p("e", "carol", T0 + DAY + 180, 0.001, 0)], {"valid": 1})
        month = upgraded_again.db["months"].find_one({"_id": "2026-01"})
        assert month["total"]["energy_kwh"] == pytest.approx(sum(WANT.values()) + 0.001)
    finally:
        upgraded_again.close()


def test_readers_page_by_day_and_filter(settings: Settings) -> None:
    store = HotStore(settings.mongo_uri, settings.mongo_db)
    for b, rows in enumerate(BATCHES):
        store.write_batch(b, rows, {"valid": len(rows)})
    store.close()
    assert [r["run_id"] for r in fetch_runs(settings, limit=2)] == ["d", "c"]
    assert [r["run_id"] for r in fetch_runs(settings)] == ["d", "c", "b", "a"]
    assert [r["run_id"] for r in fetch_runs(settings, where=RunFilter(user="alice"))] == ["b", "a"]
    tagged = fetch_runs(settings, where=RunFilter(tags=("project=vision",)))
    assert [r["run_id"] for r in tagged] == ["c"] and tagged[0]["tags"] == {"project": "vision"}
    day2 = datetime.fromtimestamp(T0 + DAY, timezone.utc)
    assert [r["run_id"] for r in fetch_runs(settings, where=RunFilter(since=day2))] == ["d"]
    by_co2 = fetch_runs(settings, sort="co2_g", limit=1)
    assert by_co2[0]["run_id"] == "c"
    users = {u["value"]: u for u in fetch_totals(settings, "user")}
    assert users["bob"]["energy_kwh"] == pytest.approx(0.015) and users["bob"]["runs"] == 2
    first_day = {u["value"]: u for u in fetch_totals(settings, "user", until=day2)}
    jan = datetime(2026, 1, 1, tzinfo=timezone.utc)  # a whole month: its month bucket
    in_jan = {u["value"]: u for u in fetch_totals(settings, "user", since=jan,
                                                  until=datetime(2026, 2, 1, tzinfo=timezone.utc))}
    assert in_jan["bob"]["energy_kwh"] == pytest.approx(0.015) and in_jan["bob"]["runs"] == 2
    assert first_day["bob"]["energy_kwh"] == pytest.approx(0.004)
    tags = {t["value"]: t for t in fetch_totals(settings, "tag")}
    assert tags["project=vision"]["energy_kwh"] == pytest.approx(0.009)
    # the Overview's reads: the buckets asked for that have figures (the others are not read)
    one = fetch_days_by_id(settings, ["2026-01-02", "2025-12-31"])
    both = fetch_days_by_id(settings, ["2026-01-01", "2026-01-02", "2026-01-03"])
    assert list(one) == ["2026-01-02"] and sorted(both) == ["2026-01-01", "2026-01-02"]
    assert one["2026-01-02"] == both["2026-01-02"]
    assert both["2026-01-01"]["total"]["energy_kwh"] == pytest.approx(0.004 + 0.002 + 0.004)
    assert fetch_days_by_id(settings, []) == {}
    mixed = fetch_buckets_by_id(settings, ["2026-01", "2025-12", "2026-01-02"])
    assert sorted(mixed) == ["2026-01", "2026-01-02"]
    assert mixed["2026-01"]["total"]["energy_kwh"] == pytest.approx(sum(WANT.values()))
    every = {(r["dim"], r["value"]): r for r in fetch_all_totals(settings)}
    assert every[("user", "bob")]["energy_kwh"] == pytest.approx(0.015)
    assert {k for k in every if k[0] == "tag"} == {("tag", "project=vision")}
    series = fetch_windows(settings, "c")
    assert [w["window_start_s"] for w in series] == [T0 + 120, T0 + DAY + 60]
    # the Overview's one read of every dimension equals the per-dimension reads
    every_dim = fetch_all_totals(settings)
    for dim in ("user", "model", "zone", "host", "tag"):
        assert [r for r in every_dim if r["dim"] == dim] == fetch_totals(settings, dim)


@pytest.mark.slow
def test_driver_state_is_bounded_after_10000_runs_end(settings: Settings) -> None:
    """10,000 runs, 40 per batch, each active in one batch: every cache of the driver stays
    near ``IDLE_BATCHES`` batches of runs, and the readers still see every run once."""
    store = HotStore(settings.mongo_uri, settings.mongo_db)
    per_batch, batches = 40, 250  # 10,000 runs
    bound = (Versions.IDLE_BATCHES + 1) * per_batch
    try:
        for b in range(batches):
            rows = [p(f"r{b}-{i}", f"u{i % 7}", T0 + 600 * b, 0.001, 0) for i in range(per_batch)]
            store.write_batch(b, rows, {"valid": per_batch})
            sizes = store.cached_keys()
            assert all(n <= bound for n in sizes.values()), sizes
        assert store.db["runs"].count_documents({}) == per_batch * batches
        total = store.db["totals"].find_one({"_id": "all|all"})
        assert total["runs"] == per_batch * batches
        assert total["energy_kwh"] == pytest.approx(0.001 * per_batch * batches)
    finally:
        store.close()
