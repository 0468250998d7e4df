"""Feeder against the real Kafka (integration): records land keyed, JSON, readable by Spark."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from carbonpipe.core.config import Settings
from carbonpipe.intensity import feeder
from carbonpipe.intensity.offline import TraceProvider
from carbonpipe.intensity.static import StaticProvider

pytestmark = pytest.mark.integration


def test_trace_replay_round_trip_through_kafka(unique_topics: Settings) -> None:
    from kafka import KafkaConsumer

    from spark_jobs.reference import parse_record

    s = unique_topics
    now = datetime(2026, 11, 24, 3, 20, tzinfo=timezone.utc)
    records = feeder.replay_records(["US-CAL-CISO"], TraceProvider(), StaticProvider(), now)
    publish, close = feeder.kafka_publisher(s.kafka_bootstrap_servers, s.intensity_topic)
    try:
        assert feeder.run(lambda _: records, publish, 1.0, once=True) == len(records) == 74
    finally:
        close()
    consumer = KafkaConsumer(
        s.intensity_topic,
        bootstrap_servers=s.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    try:
        got = [(m.key.decode(), json.loads(m.value)) for m in consumer]
    finally:
        consumer.close()
    assert sorted(k for k, _ in got) == sorted(k for k, _ in records)
    assert {k: v for k, v in got} == dict(records)
    parsed = [parse_record(json.dumps(v), i) for i, (_, v) in enumerate(got)]
    assert all(p is not None for p in parsed)
