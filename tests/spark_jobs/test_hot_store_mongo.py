"""The hot store against the real MongoDB-compatible server: bounded driver memory, late
partials merged into windows closed long ago, replays after a restart applied once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from carbonpipe.core.config import Settings
from carbonpipe.core.versions import newest
from spark_jobs.hot_store import HotStore, Versions

pytestmark = pytest.mark.integration

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def part(run: str, start_s: int, kwh: float, seq: int) -> dict[str, Any]:
    return dict(
        run_id=run, user_id="u", model_name="m", host="h", zone="GB", window_start_s=start_s,
        window_s=60, energy_kwh=kwh, cpu_kwh=kwh, gpu_kwh=0.0, ram_kwh=0.0, measured_kwh=kwh,
        estimated_kwh=0.0, co2_g=200.0 * kwh, fallback_kwh=0.0, forecast_kwh=0.0,
        covered_s=10.0, n_events=1, first_ts_s=start_s, last_ts_s=start_s + 10, min_seq=seq,
        max_seq=seq, sum_cpu_utilization_pct=50.0, max_gpu_mem_used_mb=None,
        max_ram_used_mb=1.0, ended=0, schedule_decision_id=None, intensity_providers=["test"],
    )  # fmt: skip


@pytest.fixture()
def store(unique_topics: Settings) -> Iterator[HotStore]:
    s = HotStore(unique_topics.mongo_uri, unique_topics.mongo_db)
    yield s
    s.close()


def test_memory_follows_activity_and_late_partials_merge(store: HotStore) -> None:
    """2,000 runs, 40 per batch, each active for one batch: the cache stays near
    IDLE_BATCHES x 40 runs; then a late partial for the very first window merges into it."""
    per_batch, batches = 40, 50
    for b in range(batches):
        parts = [part(f"r{b}-{i}", T0 + 60 * b, 0.001, 0) for i in range(per_batch)]
        store.write_batch(b, parts, {"valid": per_batch})
        bound = (Versions.IDLE_BATCHES + 1) * per_batch
        assert store.cached_keys()["runs"] <= bound and store.cached_keys()["windows"] <= bound
    assert store.cached_keys()["runs"] < batches * per_batch  # old runs were dropped

    late = part("r0-0", T0, 0.004, 1)  # the first run's window, evicted long ago
    store.write_batch(batches, [late], {"valid": 1})
    assert store.loaded_last_batch == 2  # its window and its run came back from MongoDB
    window = [d for d in newest(store.db["windows"].find({"run_id": "r0-0"}))]
    assert len(window) == 1 and window[0]["energy_kwh"] == pytest.approx(0.005)
    assert window[0]["n_events"] == 2 and window[0]["max_seq"] == 1
    run = newest(store.db["runs"].find({"run_id": "r0-0"}))
    assert len(run) == 1 and run[0]["energy_kwh"] == pytest.approx(0.005)
    stats = newest(store.db["stats"].find())
    assert stats[0]["counts"]["valid"] == batches * per_batch + 1


def test_a_batch_replayed_after_a_restart_is_applied_once(
    store: HotStore, unique_topics: Settings
) -> None:
    store.write_batch(0, [part("a", T0, 0.001, 0)], {"valid": 1})
    store.write_batch(1, [part("a", T0, 0.002, 1), part("a", T0 + 60, 0.003, 2)], {"valid": 2})
    store.close()
    # A new process (the job restarted) replays batch 1, which it did not commit, then goes on.
    again = HotStore(unique_topics.mongo_uri, unique_topics.mongo_db)
    try:
        again.write_batch(1, [part("a", T0, 0.002, 1), part("a", T0 + 60, 0.003, 2)],
                          {"valid": 2})  # fmt: skip
        again.write_batch(2, [part("a", T0 + 60, 0.004, 3)], {"valid": 1})
        windows = {d["window_start_s"]: d for d in newest(again.db["windows"].find())}
        assert windows[T0]["energy_kwh"] == pytest.approx(0.003)
        assert windows[T0 + 60]["energy_kwh"] == pytest.approx(0.007)
        (run,) = newest(again.db["runs"].find())
        assert run["energy_kwh"] == pytest.approx(0.010) and run["n_events"] == 4
        assert newest(again.db["stats"].find())[0]["counts"]["valid"] == 4
    finally:
        again.close()
