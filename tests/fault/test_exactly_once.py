"""Exactly-once for the streams real fleets send, end to end with the real Kafka, Spark and
MongoDB-compatible server: duplicates in one batch and days later count once, one host's
wrong clock cannot make another host's data late, late data is dead-lettered per host and per
run, poison records are dead-lettered with a reason while the job keeps going, and the hot
store, the cold window partials and ``carbonpipe runs`` agree (``tests/fault/checker.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import Settings
from carbonpipe.core.versions import newest
from tests.fault.checker import check_invariants, read_outcome
from tests.fault.scenario import J_PER_EVENT, counted, ev, job_settings, mongo
from tests.spark_jobs.pipeline_harness import (
    StreamJob,
    consume_all,
    produce,
    settings_env,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.fault]


def test_duplicates_count_once_and_hosts_keep_their_own_time(
    unique_topics: Settings, tmp_path: Path
) -> None:
    s = job_settings(unique_topics, tmp_path, lateness_s=600)
    db = mongo(s)
    # Batch 1: run X on host a, seqs 0..29 every 10 s, with seqs 5..19 delivered twice (a spool
    # replayed after a lost ack lands in the same batch); host b's run Y, and one event of
    # host z dated 23 h ahead (a wrong clock).
    x = [ev("a", "X", i, 10 * i) for i in range(30)]
    first = x + x[5:20] + [ev("b", "Y", i, 10 * i) for i in range(5)]
    first.append(ev("z", "Z", 0, 25 * 3600))
    # Poison records: 200 KB of control characters, a byte count that would overflow the
    # job's 64-bit conversion, a NaN energy (Python's json writes the NaN token).
    poison: list[tuple[str | None, Any]] = [
        (None, b"\x01" * 200_000),
        ("X", ev("a", "X", 900, 20, net_sent_mb=1e13)),
        ("X", ev("a", "X", 901, 30, cpu_energy_j=float("nan"))),
    ]
    produce(s, s.metrics_topic, [(e["run_id"], e) for e in first] + poison)
    job = StreamJob(s, tmp_path / "job.log")
    try:
        wait_for("batch 1 counted", lambda: counted(db).get("X", {}).get("n_events") == 30, job)
        # Later batches: seqs 0..9 again (days later, through a new producer), new seqs
        # 30..34, and host b's events of 15 min before its newest: late for host b only.
        later = x[:10] + [ev("a", "X", i, 10 * i) for i in range(30, 35)]
        later += [ev("b", "Y", 10, 40 - 900), ev("b", "Y", 5, 50)]
        # Host c was cut off for an hour: its events are far older than host a's newest, but
        # not behind its own, so they count.
        later += [ev("c", "C", i, 10 * i - 3600) for i in range(3)]
        produce(s, s.metrics_topic, [(e["run_id"], e) for e in later])
        wait_for("batch 2 counted", lambda: counted(db)["X"]["n_events"] == 35, job)
        wait_for("host b's events", lambda: counted(db)["Y"]["n_events"] == 6, job)
        wait_for("host c's events", lambda: counted(db).get("C", {}).get("n_events") == 3, job)
        time.sleep(3)  # a double count would show in a later batch
    finally:
        job.stop()

    runs = counted(db)
    assert runs["X"]["n_events"] == 35 and runs["X"]["duplicates"] == 25
    assert runs["X"]["energy_kwh"] == pytest.approx(35 * J_PER_EVENT / 3.6e6)
    assert runs["X"]["seq_ranges"] == [{"host": "a", "lo": 0, "hi": 34}]
    assert runs["Y"]["n_events"] == 6 and runs["Y"]["dead_letters"] == {"late": 1}
    assert runs["C"]["n_events"] == 3 and not runs["C"]["dead_letters"]
    assert "Z" not in runs or not runs["Z"].get("n_events")  # the future event counts nowhere
    windows = [d for d in newest(db["windows"].find()) if d["run_id"] == "X"]
    assert sum(d["n_events"] for d in windows) == 35
    stats = newest(db["stats"].find())[0]["counts"]
    assert stats["duplicate"] == 25 and stats["late"] == 1 and stats["future_timestamp"] == 1

    dead = {json.loads(m.value)["reason"] for m in consume_all(s, s.dlq_topic)}
    assert dead == {"late", "future_timestamp", "not_json", "out_of_range:net_sent_mb",
                    "not_finite:cpu_energy_j"}  # fmt: skip
    assert runs["X"]["dead_letters"] == {"out_of_range:net_sent_mb": 1,
                                         "not_finite:cpu_energy_j": 1}  # fmt: skip

    emitted = {(e["host"], e["run_id"], e["seq"]) for e in first + later}
    emitted |= {("a", "X", 900), ("a", "X", 901)}
    check_invariants(read_outcome(s), emitted)

    import pyarrow.dataset as ds

    partials = ds.dataset(tmp_path / "cold" / "windows", format="parquet", partitioning="hive")
    rows = [r for r in partials.to_table().to_pylist() if r["run_id"] == "X"]
    assert sum(r["n_events"] for r in rows) == 35  # the cold store counts each event once too
    assert sum(r["energy_kwh"] for r in rows) == pytest.approx(35 * J_PER_EVENT / 3.6e6)

    cmd = [sys.executable, "-m", "carbonpipe.cli", "runs", "--json"]
    out = subprocess.run(cmd, env=settings_env(s), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    listed = {r["run_id"]: r for r in json.loads(out.stdout)}
    assert listed["X"]["duplicates"] == 25 and listed["Y"]["dead_letters"] == {"late": 1}
