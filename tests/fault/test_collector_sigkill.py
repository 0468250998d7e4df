"""B7 (Jepsen-lite): a collector SIGKILLed five times at random moments and restarted with
``--resume``, its broker stopped and started at random in between, then its spool flushed and
the stream job run once: every event the collectors wrote and Kafka received is counted or
dead-lettered, and none is counted twice (duplicates are allowed in Kafka, never in MongoDB).

The collector attaches (``--pid``) to a workload of the test's own, so the workload outlives
every kill and only the collector dies, as when the OOM killer picks it. Each instance appends
its events to one ``--events`` file: that file is what was emitted. An event the file holds
but Kafka never got is one the collector held in memory only when it was killed (it cannot
report those; ``Publisher.in_memory``): they are few per kill, and bounded below. The random
schedule is seeded, and the seed is in every failure message.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbonpipe.core.config import REPO_ROOT, Settings
from carbonpipe.services import stack
from tests.fault.checker import Key, check_invariants, read_outcome
from tests.fault.scenario import counted, job_settings, key, mongo
from tests.spark_jobs.pipeline_harness import StreamJob, consume_all, settings_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.fault]

KILLS = 5
RUN = "jepsen-lite"
INTERVAL_S = 0.2  # many samples per instance: a kill lands mid-send more often
LOST_PER_KILL = 5  # events a killed collector may hold in memory only: a few samples


@pytest.fixture()
def broker(services: Settings, private_kafka: Settings, tmp_path: Path) -> Iterator[Settings]:
    """The private broker (this test stops it), the shared home (Spark's jars), a database of
    its own; the database is dropped afterwards."""
    s = job_settings(private_kafka, tmp_path, home=services.home,
                     mongo_db=f"{private_kafka.mongo_db}_b7{uuid.uuid4().hex[:8]}",
                     spool_dir=tmp_path / "spool")  # fmt: skip
    yield s
    mongo(s).client.drop_database(s.mongo_db)


def test_collector_sigkilled_five_times(
    private_kafka: Settings, broker: Settings, tmp_path: Path
) -> None:
    s = broker
    seed = int(os.environ.get("CARBONPIPE_FAULT_SEED") or time.time_ns() % 10**6)
    rng = random.Random(seed)
    env = settings_env(s, CARBONPIPE_SPOOL_DIR=str(s.spool_dir))
    events_file = tmp_path / "events.jsonl"
    workload = subprocess.Popen(["sleep", "600"])
    down = set(rng.sample(range(1, KILLS + 1), 2))  # instances that start with no broker
    log = tmp_path / "collector.log"
    try:
        with log.open("ab") as out:
            for i in range(KILLS + 1):
                if (i in down) != (not stack.kafka_healthy(private_kafka)):
                    (stack.stop_kafka if i in down else stack.start_kafka)(private_kafka)
                cmd = [sys.executable, "-m", "carbonpipe.cli", "collect", "--zone", "GB",
                       "--run-id", RUN, "--user", "u", "--model", "m", "--interval",
                       str(INTERVAL_S), "--events", str(events_file), "--pid",
                       str(workload.pid), *(["--resume"] if i else [])]  # fmt: skip
                col = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=out,
                                       start_new_session=True)  # fmt: skip
                time.sleep(rng.uniform(1.5, 5.0))
                assert col.poll() is None, f"seed {seed}: collector {i} exited early"
                os.kill(col.pid, signal.SIGKILL if i < KILLS else signal.SIGTERM)
                assert col.wait(60) == (-signal.SIGKILL if i < KILLS else 0), f"seed {seed}"
    finally:
        workload.kill()
        workload.wait()
    if not stack.kafka_healthy(private_kafka):
        stack.start_kafka(private_kafka)
    flush_cmd = [sys.executable, "-m", "carbonpipe.cli", "collect", "--flush-spool"]
    flush = subprocess.run(
        flush_cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert flush.returncode == 0, f"seed {seed}: {flush.stderr}"

    written: set[Key] = set()
    for line in events_file.read_text().splitlines():
        try:
            written.add(key(json.loads(line)))
        except ValueError:
            continue  # the line a kill cut short: its event is in memory only, if anywhere
    in_kafka = Counter(key(json.loads(m.value)) for m in consume_all(s, s.metrics_topic))
    assert set(in_kafka) <= written, f"seed {seed}: sent, never written to the events file"
    unsent = written - set(in_kafka)
    assert len(unsent) <= KILLS * LOST_PER_KILL, f"seed {seed}: {sorted(unsent)}"

    db = mongo(s)
    job = StreamJob(s, tmp_path / "job.log")

    def all_in() -> bool:
        run = counted(db).get(RUN, {})
        return run.get("n_events", 0) + sum((run.get("dead_letters") or {}).values()) >= len(
            in_kafka
        )

    try:
        wait_for("every event in Kafka counted or dead-lettered", all_in, job)
        time.sleep(3)  # a double count would show in a later batch
    finally:
        job.stop()
    print(f"seed {seed}: {len(written)} written, {len(in_kafka)} in Kafka "
          f"({sum(in_kafka.values()) - len(in_kafka)} duplicates there), {len(unsent)} unsent, "
          f"broker down for instances {sorted(down)}")  # fmt: skip
    check_invariants(read_outcome(s), set(in_kafka))
