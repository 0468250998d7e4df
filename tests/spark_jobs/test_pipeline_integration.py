"""End to end with the real Kafka, Spark and MongoDB-compatible server: exact figures.

Two runs, two users, two zones (plus one run on a zone with no feed, to see the fallback),
an intensity change in the middle of a window, malformed and late events, a crash after the
sinks but before the checkpoint commit, and a hard kill mid-stream. Every expected figure is
computed by hand below from the events' joules and the published intensities.
"""

from __future__ import annotations

import signal
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import Settings
from carbonpipe.core.contracts import intensity_key
from carbonpipe.core.timeutil import utc_iso
from carbonpipe.core.versions import newest
from spark_jobs.reference import load_fallback_table
from tests.spark_jobs.pipeline_harness import StreamJob, consume_all, produce, wait_for

pytestmark = pytest.mark.integration

J_PER_KWH = 3.6e6
NOW = datetime.now(timezone.utc)
T0 = (NOW - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
T0_S = int(T0.timestamp())


def at(seconds: float) -> str:
    return utc_iso(T0 + timedelta(seconds=seconds))


def intensity(zone: str, start_s: int, end_s: int, value: float) -> tuple[str, dict[str, Any]]:
    start = T0 + timedelta(seconds=start_s)
    return intensity_key(zone, start), {
        "zone": zone, "start": at(start_s), "end": at(end_s),
        "carbon_intensity_g_per_kwh": value, "provider": "test", "kind": "actual",
    }  # fmt: skip


# GB changes from 100 to 300 g/kWh at T0+30 s: in the middle of the first 1-minute window.
INTENSITY = [
    intensity("GB", 0, 30, 100.0),
    intensity("GB", 30, 7200, 300.0),
    intensity("DE", 0, 7200, 400.0),
]


def run_a(seq: int, t: float) -> dict[str, Any]:
    """alice on GB: 360 J CPU (measured) + 36 J RAM (estimated) per 10 s event."""
    return {
        "timestamp": at(t), "run_id": "run-a", "user_id": "alice", "model_name": "resnet18",
        "host": "h1", "region": "GB", "interval_s": 10, "seq": seq, "schema_version": 1,
        "cpu_energy_j": 360.0, "cpu_method": "measured", "ram_energy_j": 36.0,
        "ram_method": "estimated", "cpu_utilization_pct": 50.0,
    }  # fmt: skip


def run_b(t: float) -> dict[str, Any]:
    """bob on DE, in the seed's format: powers only (150 W GPU + 50 W CPU over 30 s)."""
    return {
        "timestamp": at(t), "run_id": "run-b", "user_id": "bob", "model_name": "bert-base",
        "host": "h2", "region_iso": "DE", "interval_s": 30, "gpu_power_w": 150.0,
        "cpu_power_w": 50.0, "cpu_utilization_pct": 73.4, "gpu_mem_used_mb": 2104,
        "ram_used_mb": 8650, "net_sent_mb": 1.4, "net_recv_mb": 0.8,
        "grid_carbon_intensity_g_per_kwh": 401,
    }  # fmt: skip


def run_c(t: float) -> dict[str, Any]:
    """bob on FR, where no feed publishes: the cited static average applies, flagged."""
    return {
        "timestamp": at(t), "run_id": "run-c", "user_id": "bob", "model_name": "bert-base",
        "host": "h3", "region": "FR", "interval_s": 1, "cpu_energy_j": 3600.0,
        "cpu_method": "estimated",
    }  # fmt: skip


PHASE1 = [run_a(i, t) for i, t in enumerate((10, 20, 40, 50, 70))] + [
    run_b(15),
    run_b(45),
    run_b(75),
    run_c(5),
]
PHASE2 = [run_a(5, 130), run_a(6, 140), run_a(7, 190), run_b(135)]
LATE = run_a(99, -1000)  # older than the newest event time (T0+75) minus 900 s of lateness
MALFORMED: list[tuple[bytes | dict[str, Any], str]] = [
    (b"{not json", "not_json"),
    ({"timestamp": at(1), "user_id": "x", "model_name": "m", "region": "GB", "interval_s": 1},
     "missing_field:run_id"),
    ({**run_a(50, 80), "cpu_energy_j": "lots"}, "wrong_type:cpu_energy_j"),
    ({**run_a(51, 80), "cpu_energy_j": -5.0}, "negative_value:cpu_energy_j"),
    ({**run_a(52, 80), "timestamp": "1970-01-01T00:00:00Z"}, "absurd_timestamp"),
    ({**run_a(53, 80), "timestamp": "2999-01-01T00:00:00Z"}, "absurd_timestamp"),
    ({**run_a(54, 80), "timestamp": "not-a-time"}, "bad_timestamp"),
]  # fmt: skip


def energy_j(e: dict[str, Any]) -> float:
    total = 0.0
    for dev in ("cpu", "gpu", "ram"):
        if f"{dev}_energy_j" in e:
            total += e[f"{dev}_energy_j"]
        elif f"{dev}_power_w" in e:
            total += e[f"{dev}_power_w"] * e["interval_s"]
    return total


def expected(events: list[dict[str, Any]], fr_g_per_kwh: float) -> tuple[dict, dict]:
    """Hand computation: per (run, window start) and per run, (kWh, gCO2e, n)."""

    def ci(e: dict[str, Any], t: float) -> float:
        zone = e.get("region") or e.get("region_iso")
        if zone == "GB":
            return 100.0 if t < 30 else 300.0
        if zone == "DE":
            return 400.0
        return fr_g_per_kwh

    windows: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    runs: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for e in events:
        t = (datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) - T0).total_seconds()
        kwh = energy_j(e) / J_PER_KWH
        g = kwh * ci(e, t)
        w = windows[(e["run_id"], T0_S + int(t // 60) * 60)]
        r = runs[e["run_id"]]
        for acc in (w, r):
            acc[0] += kwh
            acc[1] += g
            acc[2] += 1
    return dict(windows), dict(runs)


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def mongo_db(settings: Settings) -> Any:
    from pymongo import MongoClient

    return MongoClient(settings.mongo_uri, tz_aware=True)[settings.mongo_db]


def mongo_windows(db: Any) -> dict[tuple[str, int], tuple[float, float, int]]:
    out: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for d in newest(db["windows"].find()):
        acc = out[(d["run_id"], d["window_start_s"])]
        acc[0] += d["energy_kwh"]
        acc[1] += d["co2_g"]
        acc[2] += d["n_events"]
    return {k: (v[0], v[1], int(v[2])) for k, v in out.items()}


def parquet_totals(cold: Path) -> tuple[dict, dict, list[dict[str, Any]]]:
    import pyarrow.dataset as ds

    table = ds.dataset(cold / "events", format="parquet", partitioning="hive").to_table()
    rows = table.to_pylist()
    windows: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    runs: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for r in rows:
        ts = (
            int(r["ts"].replace(tzinfo=timezone.utc).timestamp())
            if r["ts"].tzinfo is None
            else int(r["ts"].timestamp())
        )
        for acc in (windows[(r["run_id"], ts - ts % 60)], runs[r["run_id"]]):
            acc[0] += r["energy_kwh"]
            acc[1] += r["co2_g"]
            acc[2] += 1
    return dict(windows), dict(runs), rows


def assert_totals(settings: Settings, cold: Path, events: list[dict[str, Any]]) -> None:
    fr = load_fallback_table()["FR"][0]
    exp_w, exp_r = expected(events, fr)
    db = mongo_db(settings)
    got_w = mongo_windows(db)
    assert set(got_w) == set(exp_w)
    for k, (kwh, g, n) in exp_w.items():
        assert close(got_w[k][0], kwh) and close(got_w[k][1], g) and got_w[k][2] == n, (k, got_w[k])
    runs = {d["run_id"]: d for d in newest(db["runs"].find())}
    assert set(runs) == set(exp_r)
    for run_id, (kwh, g, n) in exp_r.items():
        d = runs[run_id]
        assert close(d["energy_kwh"], kwh) and close(d["co2_g"], g) and d["n_events"] == n, d
    import pyarrow.dataset as ds

    if settings.cold_events:  # the per-event archive holds every valid event once
        pw, pr, rows = parquet_totals(cold)
        assert set(pw) == set(exp_w) and set(pr) == set(exp_r)
        for k, (kwh, g, n) in exp_w.items():
            assert close(pw[k][0], kwh) and close(pw[k][1], g) and pw[k][2] == n, (k, pw[k])
        assert {r["intensity_kind"] for r in rows if r["run_id"] == "run-c"} == {"fallback"}
        assert {r["intensity_provider"] for r in rows if r["run_id"] == "run-a"} == {"test"}
    else:
        assert not (cold / "events").exists()
    # the cold window partials (per-batch deltas) sum to the same totals
    partials = (
        ds.dataset(cold / "windows", format="parquet", partitioning="hive").to_table().to_pylist()
    )
    parts: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for r in partials:
        acc = parts[(r["run_id"], r["window_start_s"])]
        acc[0] += r["energy_kwh"]
        acc[1] += r["co2_g"]
        acc[2] += r["n_events"]
    assert set(parts) == set(exp_w)
    for k, (kwh, g, n) in exp_w.items():
        assert close(parts[k][0], kwh) and close(parts[k][1], g) and parts[k][2] == n, (k, parts[k])
    # provenance travels with the figures, in the partials too
    assert {r["intensity_provider"] for r in partials if r["run_id"] == "run-c"} == {"static"}
    assert all(
        close(r["fallback_kwh"], r["energy_kwh"]) for r in partials if r["run_id"] == "run-c"
    )
    assert {r["intensity_provider"] for r in partials if r["run_id"] == "run-a"} == {"test"}
    assert runs["run-a"]["method"] == "mixed" and runs["run-c"]["method"] == "estimated"


@pytest.fixture(params=[False, True], ids=["default", "event-archive"])
def pipeline(unique_topics: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """The default job (window partials in Parquet), and with the per-event archive on."""
    return unique_topics.model_copy(update={
        "cold_store_uri": str(tmp_path / "cold"),
        "checkpoint_uri": str(tmp_path / "checkpoints"),
        "trigger_s": 1.0,
        "lateness_s": 900,  # LATE below is 16 min behind its host
        "cold_events": request.param,
    })  # fmt: skip


def test_exact_totals_dead_letters_and_restarts(pipeline: Settings, tmp_path: Path) -> None:
    s = pipeline
    produce(s, s.intensity_topic, INTENSITY)
    produce(s, s.metrics_topic, [(e["run_id"], e) for e in PHASE1])
    db = mongo_db(s)

    # 1. A job that dies right after writing the sinks of its first batch, before Spark
    #    commits it: the restart must replay that batch without counting it twice.
    crashing = StreamJob(s, tmp_path / "job1.log", CARBONPIPE_FAULT_EXIT_AT="after_mongo")
    wait_for("the crashing job to exit", lambda: not crashing.alive(), None, timeout_s=300)
    assert crashing.proc.returncode == 137, crashing.tail()
    assert db["windows"].count_documents({}) > 0  # its sinks were written

    job = StreamJob(s, tmp_path / "job2.log")
    try:
        wait_for("the replayed batch", lambda: db["job_state"].count_documents({}) >= 1, job)
        assert_totals(s, Path(s.cold_store_uri), PHASE1)

        # 2. Bad input and a late event go to the dead-letter topic; the job keeps going.
        produce(s, s.metrics_topic, [(None, v) for v, _ in MALFORMED])
        produce(s, s.metrics_topic, [("run-a", LATE)])
        produce(s, s.metrics_topic, [(e["run_id"], e) for e in PHASE2[:2]])
        time.sleep(2.0)
    finally:
        # 3. Killed hard, mid-stream, wherever it is.
        job.stop(signal.SIGKILL)

    produce(s, s.metrics_topic, [(e["run_id"], e) for e in PHASE2[2:]])
    job = StreamJob(s, tmp_path / "job3.log")
    try:
        want = len(PHASE1) + len(PHASE2)
        wait_for(
            "all valid events in MongoDB",
            lambda: sum(d["n_events"] for d in newest(db["runs"].find())) >= want,
            job,
        )
        time.sleep(3.0)  # a double count would show up in a later batch
        assert_totals(s, Path(s.cold_store_uri), PHASE1 + PHASE2)
        assert job.alive(), job.tail()

        dead = consume_all(s, s.dlq_topic)
        by_key = {
            m.key.decode(): m.value for m in dead
        }  # a replay may resend a key, never a new one
        import json

        reasons = sorted(json.loads(v)["reason"] for v in by_key.values())
        assert reasons == sorted([r for _, r in MALFORMED] + ["late"])
        counts = newest(db["stats"].find())[0]["counts"]
        assert counts["valid"] == want
        assert sum(v for k, v in counts.items() if k != "valid") == len(MALFORMED) + 1
    finally:
        job.stop()
    check_commands(s, PHASE1 + PHASE2)


def check_commands(s: Settings, events: list[dict[str, Any]]) -> None:
    """`carbonpipe runs/users --json` (hot store) and `carbonpipe sql` (cold store) agree."""
    import json
    import subprocess
    import sys

    from tests.spark_jobs.pipeline_harness import settings_env

    _, exp_r = expected(events, load_fallback_table()["FR"][0])
    env = settings_env(s)

    def cli(*args: str) -> Any:
        out = subprocess.run([sys.executable, "-m", "carbonpipe.cli", *args], env=env,
                             capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
        return json.loads(out.stdout)

    runs = {r["run_id"]: r for r in cli("runs", "--json")}
    assert set(runs) == set(exp_r)
    for run_id, (kwh, g, _) in exp_r.items():
        assert close(runs[run_id]["energy_kwh"], kwh) and close(runs[run_id]["co2_g"], g)
    users = {u["user_id"]: u for u in cli("users", "--json")}
    assert close(users["alice"]["co2_g"], exp_r["run-a"][1])
    assert close(users["bob"]["co2_g"], exp_r["run-b"][1] + exp_r["run-c"][1])
    query = (
        "SELECT run_id, SUM(co2_g) AS g, COUNT(*) AS n FROM events GROUP BY run_id"
        if s.cold_events
        else "SELECT run_id, SUM(co2_g) AS g, SUM(n_events) AS n FROM windows GROUP BY run_id"
    )
    rows = cli("sql", query, "--json")
    assert {r["run_id"] for r in rows} == set(exp_r)
    for r in rows:
        assert close(r["g"], exp_r[r["run_id"]][1]) and r["n"] == exp_r[r["run_id"]][2]
