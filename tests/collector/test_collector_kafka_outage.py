"""Kafka stopped for 60 s in the middle of a collection: every event arrives, in order,
once (seq 0..N contiguous, no duplicates). Uses the shared ``unique_topics`` fixture and
``carbonpipe.services.stack.stop_kafka``/``start_kafka``."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from carbonpipe.core.config import Settings
from carbonpipe.core.contracts import validation_errors
from carbonpipe.services import stack
from collector.runner import build_collector

OUTAGE_S = 60.0


def _consume(settings: Settings, want_end: str, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        settings.metrics_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
        value_deserializer=lambda b: json.loads(b),
    )
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for msg in consumer:
                assert msg.key.decode() == msg.value["run_id"]
                out.append(msg.value)
            if any(e["run_id"] == want_end and e["event_type"] == "end" for e in out):
                break
    finally:
        consumer.close()
    return out


@pytest.mark.integration
def test_no_event_lost_across_a_kafka_outage(unique_topics: Settings, tmp_path: Any) -> None:
    # home stays (the stack's pid files live there); only the spool is the test's own
    settings = unique_topics.model_copy(update={"spool_dir": tmp_path / "spool", "zone": "GB"})
    run_id = f"outage-{time.time_ns()}"
    col = build_collector(
        settings, run_id=run_id, user_id="u", model_name="m", interval_s=0.5
    ).start()
    try:
        time.sleep(3)
        before = stack.running_pid(settings, "kafka")
        if not stack.stop_kafka(settings):
            pytest.skip(
                f"the broker was not started by carbonpipe (pid {before}, home "
                f"{settings.home}); cannot stop it"
            )
        t0 = time.monotonic()
        time.sleep(OUTAGE_S)
        assert col.publisher.spool.pending > 0  # the outage was real: events were spooled
        stack.start_kafka(settings)
        stack.wait_ready(settings, ["kafka"])
        outage = time.monotonic() - t0
        deadline = time.monotonic() + 90
        while col.publisher.spool.pending and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)
    finally:
        left = col.stop()
    assert left == 0
    events = [e for e in _consume(settings, run_id) if e["run_id"] == run_id]
    seqs = [e["seq"] for e in events]
    assert len(seqs) == len(set(seqs)), "duplicates"
    assert seqs == list(range(len(seqs))), "gap or disorder"  # one key -> one partition
    assert events[-1]["event_type"] == "end"
    assert len(events) >= outage / 0.5  # the outage's samples are there too
    assert all(validation_errors(e) == [] for e in events)
