"""B3: an ack withheld, so the producer resends: Kafka holds the duplicates, the hot store
counts each event once.

How the resend is made: each event is produced twice, by two ``KafkaProducer`` instances, the
second opened after the first has closed. That is exactly what a collector does when an ack
is lost, whether its producer retries or a restarted collector replays its spool: the same
``(host, run_id, seq)`` appended again at a new offset. A TCP proxy that swallows the produce
response would reach the same log state less directly (the broker advertises its own address
in metadata, so the proxy also needs a broker whose advertised listener points at it) and
adds timing to the test; the job, which is what this scenario is about, only ever sees the
log. Resends land both in the batch of the original and in a later batch.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from carbonpipe.core.config import Settings
from tests.fault.checker import check_invariants, read_outcome
from tests.fault.scenario import KWH_PER_EVENT, counted, ev, job_settings, key, mongo
from tests.spark_jobs.pipeline_harness import StreamJob, consume_all, produce, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.fault]

N = 40
EVENTS = [ev("a", "R", i, 10 * i) for i in range(N)]


def test_resent_after_a_lost_ack_counts_once(unique_topics: Settings, tmp_path: Path) -> None:
    s = job_settings(unique_topics, tmp_path)
    db = mongo(s)
    produce(s, s.metrics_topic, [("R", e) for e in EVENTS[:30]])  # acks lost for 10..29:
    produce(s, s.metrics_topic, [("R", e) for e in EVENTS[10:]])  # resent, with the rest
    job = StreamJob(s, tmp_path / "job.log")
    try:
        wait_for("the first batch", lambda: counted(db).get("R", {}).get("n_events") == N, job)
        produce(s, s.metrics_topic, [("R", e) for e in EVENTS[:20]])  # a replay, much later
        wait_for("the replay dropped", lambda: counted(db)["R"].get("duplicates") == 40, job)
        time.sleep(3)  # a double count would show in a later batch
    finally:
        job.stop()

    in_log = Counter(key(json.loads(m.value)) for m in consume_all(s, s.metrics_topic))
    assert sum(in_log.values()) == N + 20 + 20 and max(in_log.values()) == 3  # Kafka: resent
    run = counted(db)["R"]
    assert run["n_events"] == N and run["duplicates"] == 40  # MongoDB: each once
    assert run["energy_kwh"] == pytest.approx(N * KWH_PER_EVENT)
    check_invariants(read_outcome(s), in_log)
