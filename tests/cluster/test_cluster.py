"""The pipeline on the local cluster (``make test-cluster``): three KRaft brokers with a
replicated topic, Spark standalone (master + 2 workers, the job submitted with ``spark-submit``
and the project's wheel), cold store and checkpoint on HDFS. Mid-stream one broker is stopped
and restarted, one worker is killed and the driver is restarted from its HDFS checkpoint; every
run's kWh and gCO2e must then be exact in MongoDB and in the Parquet on HDFS (read back with
``carbonpipe sql``): nothing lost, nothing doubled."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import REPO_ROOT, Settings
from carbonpipe.services import cluster
from spark_jobs.reference import load_fallback_table
from tests.cluster.conftest import LocalCluster
from tests.fault.scenario import J_PER_EVENT, KWH_PER_EVENT, counted, ev, mongo
from tests.spark_jobs.pipeline_harness import StreamJob, produce, settings_env, wait_for
from tests.test_wheel_install import BUILD_INPUTS

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

RUNS = {"r1": ("h1", "FR"), "r2": ("h2", "FR"), "r3": ("h3", "PL"), "r4": ("h1", "SE")}
PER_PHASE = 15  # events per run and phase (10 s apart)
WAIT_S = 300.0  # for a phase to be counted (a driver start is ~30 s of it here)
BROKER_DOWN_S = 60.0  # the 60 s, counted from the stop (phase 1 is counted meanwhile)


def events(phase: int) -> list[dict[str, Any]]:
    out = []
    for run, (host, zone) in RUNS.items():
        for i in range(phase * PER_PHASE, (phase + 1) * PER_PHASE):
            out.append(ev(host, run, i, 10 * i, region=zone, user_id=f"user-{host}"))
    return out


def expected(evs: list[dict[str, Any]]) -> dict[str, tuple[float, float, int]]:
    """Per run by hand: (kWh, gCO2e at the zone's static average, events)."""
    table = load_fallback_table()
    acc: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for e in evs:
        a = acc[e["run_id"]]
        a[0] += KWH_PER_EVENT
        a[1] += KWH_PER_EVENT * table[e["region"]][0]
        a[2] += 1
    return {k: (v[0], v[1], int(v[2])) for k, v in acc.items()}


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the checkout (what users pass --py-files)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        p = REPO_ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(p, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(root / "dist"), str(src)], check=True, capture_output=True)  # fmt: skip
    (whl,) = (root / "dist").glob("carbonpipe-*.whl")
    return whl


def submit(s: Settings, wheel: Path, log: Path) -> StreamJob:
    env = {"SPARK_LOCAL_IP": cluster.HOST, "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable,
           "CARBONPIPE_STREAM_MAX_CONSECUTIVE_FAILURES": "3"}  # a broken job fails the test
    cmd = cluster.submit_command(s, wheel, REPO_ROOT / "spark_jobs" / "stream.py")
    return StreamJob(s, log, cmd, **env)


def hdfs_ls(s: Settings, uri: str) -> str:
    """``hadoop fs -ls -R`` of an HDFS folder (the NameNode's own answer, not Spark's)."""
    res = cluster.fs_shell(s, ["-ls", "-R", uri])
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def test_replicated_topic(cluster_run: Settings) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = KafkaAdminClient(bootstrap_servers=cluster_run.kafka_bootstrap_servers)
    try:
        (topic,) = admin.describe_topics([cluster_run.metrics_topic])
        assert len(topic["partitions"]) == cluster_run.metrics_partitions
        assert all(sorted(p["replica_nodes"]) == [1, 2, 3] for p in topic["partitions"])
        res = ConfigResource(ConfigResourceType.TOPIC, cluster_run.metrics_topic)
        configs = admin.describe_configs([res])["topic"][cluster_run.metrics_topic]
        assert configs["min.insync.replicas"]["value"] == "2"
    finally:
        admin.close()


def test_pipeline_survives_a_broker_a_worker_and_a_driver(
    local_cluster: LocalCluster, cluster_run: Settings, wheel: Path, tmp_path: Path
) -> None:
    s, c = cluster_run, local_cluster.handle
    db = mongo(s)
    sent: list[dict[str, Any]] = []

    def all_counted(evs: list[dict[str, Any]]) -> bool:
        want = expected(evs)
        runs = counted(db)
        return all(runs.get(r, {}).get("n_events") == n for r, (_, _, n) in want.items())

    def send(evs: list[dict[str, Any]]) -> None:
        produce(s, s.metrics_topic, [(e["run_id"], e) for e in evs])  # acks=all
        sent.extend(evs)

    t0 = time.monotonic()
    job = submit(s, wheel, tmp_path / "job1.log")
    try:
        send(events(0))
        wait_for("phase 0 counted", lambda: all_counted(sent), job, timeout_s=WAIT_S)
        print(f"first batch counted {time.monotonic() - t0:.0f}s after spark-submit")

        broker = c.service("kafka-2")
        assert broker.stop(c.state)  # a broker down: 2 of 3 replicas left = min.insync
        down_at = time.monotonic()
        send(events(1))  # acks=all still succeeds
        worker = c.service("spark-worker-1")
        pid = worker.running_pid(c.state)
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)  # the worker and its executor, as a lost machine
        wait_for("phase 1 counted on 2 brokers and 1 worker", lambda: all_counted(sent), job,
                 timeout_s=WAIT_S)  # fmt: skip
        assert len(cluster.alive_workers(s)) == s.cluster_workers - 1
        time.sleep(max(0.0, BROKER_DOWN_S - (time.monotonic() - down_at)))
        broker.start(c.state)  # rejoins and catches up
        send(events(2))
        wait_for("phase 2 counted", lambda: all_counted(sent), job, timeout_s=WAIT_S)
    finally:
        assert job.stop() is not None

    assert "/stream/offsets/" in hdfs_ls(s, s.checkpoint_uri)  # the checkpoint is on HDFS
    send(events(3))  # written while no driver runs
    job = submit(s, wheel, tmp_path / "job2.log")  # resumes from its HDFS checkpoint
    try:
        wait_for("phase 3 counted after the restart", lambda: all_counted(sent), job,
                 timeout_s=WAIT_S)  # fmt: skip
        time.sleep(3 * s.trigger_s)  # a double count would show in a later batch
    finally:
        job.stop()
    c.service("spark-worker-1").start(c.state)

    want = expected(sent)
    runs = counted(db)
    assert set(runs) == set(want)
    for run, (kwh, g, n) in want.items():
        doc = runs[run]
        assert doc["n_events"] == n and close(doc["energy_kwh"], kwh), doc
        assert close(doc["co2_g"], g), (run, doc["co2_g"], g)
    assert sum(n for *_, n in want.values()) == len(sent) == 4 * len(RUNS) * PER_PHASE
    assert close(sum(w[0] for w in want.values()), len(sent) * J_PER_EVENT / 3.6e6)

    env = settings_env(s, SPARK_LOCAL_IP=cluster.HOST)
    query = "SELECT run_id, SUM(energy_kwh) AS kwh, SUM(co2_g) AS g, COUNT(*) AS n " \
            "FROM events GROUP BY run_id"
    out = subprocess.run([sys.executable, "-m", "carbonpipe.cli", "sql", query, "--json"],
                         env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    cold = {r["run_id"]: r for r in json.loads(out.stdout)}
    assert set(cold) == set(want)
    for run, (kwh, g, n) in want.items():
        assert cold[run]["n"] == n and close(cold[run]["kwh"], kwh) and close(cold[run]["g"], g)
