"""B1: the streaming job killed at each sink boundary of a micro-batch, then restarted.

A micro-batch writes its sinks one after another (dead letters to Kafka, the batch to
MongoDB, the per-event archive and window partials to Parquet, the job's own state) and only
then does Spark commit it; a crash between any two leaves some sinks written and the batch
uncommitted, so the restart replays it. Each point is reached through the job's test-only
hook (``CARBONPIPE_FAULT_EXIT_AT``, ``carbonpipe.core.config.BATCH_FAULT_POINTS``), which exits
137 as a SIGKILL would. After the replay the totals are exact and the four invariants hold
(``tests/fault/checker.py``): hot = cold, nothing counted twice, dead letters only the ones
expected.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from carbonpipe.core.config import BATCH_FAULT_POINTS, Settings
from tests.fault.checker import check_invariants, read_outcome
from tests.fault.scenario import KWH_PER_EVENT, counted, ev, job_settings, key, mongo
from tests.spark_jobs.pipeline_harness import StreamJob, consume_all, produce, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.fault]

N = 20  # run K on host a, seqs 0..19, 10 s apart
EVENTS = [ev("a", "K", i, 10 * i) for i in range(N)]
DUPLICATE = EVENTS[3]  # sent twice in the same batch
BAD = ev("a", "K", 900, 15, cpu_energy_j=float("nan"))  # dead-lettered, with its identity
BAD_REASON = "not_finite:cpu_energy_j"


@pytest.mark.parametrize("point", BATCH_FAULT_POINTS)
def test_killed_at_each_sink_boundary(unique_topics: Settings, tmp_path: Path, point: str) -> None:
    s = job_settings(unique_topics, tmp_path)
    db = mongo(s)
    produce(s, s.metrics_topic, [("K", e) for e in [*EVENTS, DUPLICATE, BAD]])

    crashing = StreamJob(s, tmp_path / "crash.log", CARBONPIPE_FAULT_EXIT_AT=point)
    wait_for(f"the job to die {point}", lambda: not crashing.alive(), None, timeout_s=300)
    crashing.stop()
    assert crashing.proc.returncode == 137, crashing.tail()
    # It died where it was told to: the sinks before the point are written, those after not.
    at = BATCH_FAULT_POINTS.index(point)
    wrote_mongo = at >= BATCH_FAULT_POINTS.index("after_mongo")
    wrote_cold = at >= BATCH_FAULT_POINTS.index("after_windows_parquet")
    assert (counted(db).get("K", {}).get("n_events") == N) is wrote_mongo
    assert db["job_state"].count_documents({}) == (1 if point == "after_state" else 0)
    assert (Path(s.cold_store_uri) / "windows").exists() is wrote_cold
    assert (Path(s.cold_store_uri) / "events").exists() is wrote_cold

    job = StreamJob(s, tmp_path / "job.log")
    try:
        wait_for("the replayed batch", lambda: db["job_state"].count_documents({}) >= 1
                 and counted(db).get("K", {}).get("n_events") == N, job)  # fmt: skip
        time.sleep(3)  # a double count would show in a later batch
        assert job.alive(), job.tail()
    finally:
        job.stop()

    run = counted(db)["K"]
    assert run["n_events"] == N and run["duplicates"] == 1
    assert run["energy_kwh"] == pytest.approx(N * KWH_PER_EVENT)
    assert run["dead_letters"] == {BAD_REASON: 1}
    # A replay may resend a dead letter (same source offset, so same key), never a new one.
    letters = {m.key: json.loads(m.value) for m in consume_all(s, s.dlq_topic)}
    assert [(json.loads(v["raw"])["seq"], v["reason"]) for v in letters.values()] == [
        (BAD["seq"], BAD_REASON)
    ]
    check_invariants(read_outcome(s), {key(e) for e in [*EVENTS, BAD]})
