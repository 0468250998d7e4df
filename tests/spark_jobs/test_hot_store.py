"""Versioned, idempotent merging of window/run partials (pure part of the MongoDB sink)."""

from __future__ import annotations

from carbonpipe.core.versions import newest
from spark_jobs.hot_store import Versions
from spark_jobs.merge import (
    merge_counts,
    merge_run,
    merge_window,
    method_label,
    run_parts,
)


def part(**kw: object) -> dict[str, object]:
    base: dict[str, object] = dict(
        run_id="r1", user_id="u", model_name="m", host="h", zone="GB", window_start_s=600,
        window_s=60, energy_kwh=1.0, cpu_kwh=1.0, gpu_kwh=0.0, ram_kwh=0.0, measured_kwh=1.0,
        estimated_kwh=0.0, co2_g=200.0, fallback_kwh=0.0, forecast_kwh=0.0, covered_s=30.0,
        n_events=30, first_ts_s=600, last_ts_s=629, min_seq=0, max_seq=29,
        sum_cpu_utilization_pct=300.0, max_gpu_mem_used_mb=None, max_ram_used_mb=10.0, ended=0,
        schedule_decision_id=None, intensity_providers=["trace"],
    )  # fmt: skip
    base.update(kw)
    return base


LATER = dict(energy_kwh=0.5, co2_g=150.0, measured_kwh=0.0, estimated_kwh=0.5, first_ts_s=630,
             last_ts_s=659, min_seq=30, max_seq=59)  # fmt: skip


def test_versions_accumulate_and_carry_their_batch() -> None:
    first = merge_window(None, part(), batch_id=3)
    assert first["_id"] == "r1|h|GB|600|b3" and first["key"] == "r1|h|GB|600"
    second = merge_window(first, part(**LATER), batch_id=4)
    assert second["_id"] == "r1|h|GB|600|b4"
    assert second["energy_kwh"] == 1.5 and second["co2_g"] == 350.0
    assert second["first_ts_s"] == 600 and second["last_ts_s"] == 659 and second["max_seq"] == 59
    assert abs(second["mean_intensity_g_per_kwh"] - 350.0 / 1.5) < 1e-12
    assert second["method"] == "mixed"
    assert newest([first, second]) == [second]


def test_a_replayed_batch_merges_from_the_same_base_and_is_not_applied_twice() -> None:
    v = Versions()
    d3 = merge_window(None, part(), 3)
    v.add(d3)
    d4 = merge_window(v.base(d3["key"], 4)[0], part(**LATER), 4)
    v.add(d4)
    base, applied = v.base(d3["key"], 4)  # batch 4 replayed after a crash
    assert applied and base is d3
    v.add(merge_window(v.base(d3["key"], 5)[0], part(**LATER), 5))
    assert v.garbage == [d3["_id"]]  # only versions older than the two newest are dropped
    assert v.base(d3["key"], 5)[0] is d4


def test_run_totals_fold_hosts_and_windows() -> None:
    runs = run_parts([part(), part(host="h2", window_start_s=660, first_ts_s=660, last_ts_s=700)])
    doc = merge_run(None, runs["r1"], 0)
    assert doc["energy_kwh"] == 2.0 and doc["hosts"] == ["h", "h2"] and doc["duration_s"] == 100
    assert doc["_id"] == "r1|b0"


def test_counts_accumulate() -> None:
    d = merge_counts(None, {"valid": 5, "not_json": 1}, 0)
    d2 = merge_counts(d, {"valid": 2}, 1)
    assert d2["counts"] == {"valid": 7, "not_json": 1} and d2["_id"] == "pipeline|b1"


def test_counts_keep_the_last_batch_and_a_bounded_recent_list() -> None:
    from spark_jobs.merge import RECENT_BATCHES

    d = merge_counts(None, {"valid": 1}, 0)
    assert "last_batch" not in d and "recent" not in d  # no progress given: counts only
    for b in range(1, RECENT_BATCHES + 5):
        d = merge_counts(d, {"valid": 1}, b, {"seconds": 0.5, "events": 1, "kafka_lag": b})
    assert d["counts"] == {"valid": RECENT_BATCHES + 5}
    assert d["last_batch"] == {"batch_id": RECENT_BATCHES + 4, "seconds": 0.5, "events": 1,
                               "kafka_lag": RECENT_BATCHES + 4, "counts": {"valid": 1}}
    assert len(d["recent"]) == RECENT_BATCHES and d["recent"][-1] == d["last_batch"]
    assert d["recent"][0]["batch_id"] == 5


def test_method_label() -> None:
    assert method_label({"energy_kwh": 1.0, "measured_kwh": 1.0}) == "measured"
    assert method_label({"energy_kwh": 1.0, "estimated_kwh": 1.0}) == "estimated"
    assert method_label({"energy_kwh": 0.0}) == "unknown"


def test_rows_per_provider_fold_into_one_window() -> None:
    from spark_jobs.merge import fold_windows

    a = {**part(), "intensity_provider": "trace"}
    a.pop("intensity_providers")
    b = {**part(**LATER), "intensity_provider": "static", "schedule_decision_id": "d1"}
    b.pop("intensity_providers")
    other = {**a, "window_start_s": 660}
    folded = {w["window_start_s"]: w for w in fold_windows([a, b, other])}
    w = folded[600]
    assert w["energy_kwh"] == 1.5 and w["n_events"] == 60 and w["last_ts_s"] == 659
    assert w["intensity_providers"] == ["static", "trace"] and w["schedule_decision_id"] == "d1"
    assert folded[660]["energy_kwh"] == 1.0 and len(folded) == 2


def test_every_declared_aggregate_survives_the_window_and_run_merges() -> None:
    """E1 of the design review: an aggregate declared once is merged, never dropped."""
    from carbonpipe.core.aggregates import AGGREGATES

    first = {a.name: 3.0 for a in AGGREGATES}
    second = {a.name: 5.0 for a in AGGREGATES}
    want = {"sum": 8.0, "max": 5.0, "min": 3.0, "last": 5.0, "xor": 3 ^ 5}
    w1 = merge_window(None, part(**first), 1)
    w2 = merge_window(w1, part(**second), 2)
    runs = run_parts([part(**first), part(host="h2", **second)])
    r = merge_run(None, runs["r1"], 1)
    for a in AGGREGATES:
        assert w2[a.name] == want[a.merge], a
        assert r[a.name] == want[a.merge], a
