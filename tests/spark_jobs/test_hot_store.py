"""Idempotent merging of window/run partials (pure part of the MongoDB sink)."""

from __future__ import annotations

from spark_jobs.hot_store import merge_counts, merge_run, merge_window, method_label, run_parts


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


def test_a_replayed_batch_is_skipped_and_a_new_one_adds() -> None:
    first = merge_window(None, part(), batch_id=3)
    assert first is not None and first["energy_kwh"] == 1.0 and first["last_batch"] == 3
    assert merge_window(first, part(), batch_id=3) is None  # replay of batch 3
    assert merge_window(first, part(), batch_id=2) is None  # older batch
    second = merge_window(first, part(energy_kwh=0.5, co2_g=150.0, measured_kwh=0.0,
                                      estimated_kwh=0.5, first_ts_s=630, last_ts_s=659,
                                      min_seq=30, max_seq=59), batch_id=4)  # fmt: skip
    assert second is not None
    assert second["energy_kwh"] == 1.5 and second["co2_g"] == 350.0
    assert second["first_ts_s"] == 600 and second["last_ts_s"] == 659 and second["max_seq"] == 59
    assert abs(second["mean_intensity_g_per_kwh"] - 350.0 / 1.5) < 1e-12
    assert second["method"] == "mixed"


def test_run_totals_fold_hosts_and_windows() -> None:
    runs = run_parts([part(), part(host="h2", window_start_s=660, first_ts_s=660, last_ts_s=700)])
    r = runs["r1"]
    r.update(hosts=sorted(r["hosts"]), zones=sorted(r["zones"]),
             intensity_providers=sorted(r["intensity_providers"]))  # fmt: skip
    doc = merge_run(None, r, 0)
    assert doc is not None
    assert doc["energy_kwh"] == 2.0 and doc["hosts"] == ["h", "h2"] and doc["duration_s"] == 100
    assert merge_run(doc, r, 0) is None


def test_counts_are_idempotent_too() -> None:
    d = merge_counts(None, {"valid": 5, "not_json": 1}, 0, "pipeline")
    assert d is not None
    assert merge_counts(d, {"valid": 5}, 0, "pipeline") is None
    d2 = merge_counts(d, {"valid": 2}, 1, "pipeline")
    assert d2 is not None and d2["counts"] == {"valid": 7, "not_json": 1}


def test_method_label() -> None:
    assert method_label({"energy_kwh": 1.0, "measured_kwh": 1.0}) == "measured"
    assert method_label({"energy_kwh": 1.0, "estimated_kwh": 1.0}) == "estimated"
    assert method_label({"energy_kwh": 0.0}) == "unknown"
