"""The real local stack works end to end: Kafka roundtrip, FerretDB upserts, restart survival,
and Spark reading Kafka through the Maven-resolved connector jars (never spark.jars.packages).
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from carbonpipe.core.config import Settings
from carbonpipe.services import stack

pytestmark = pytest.mark.integration


def _produce(settings: Settings, topic: str, values: list[dict[str, object]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all",
                             value_serializer=lambda v: json.dumps(v).encode())
    try:
        for i, value in enumerate(values):
            producer.send(topic, key=str(i).encode(), value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()


def _consume_all(settings: Settings, topic: str, expected: int,
                 timeout_s: float = 30.0) -> list[dict[str, object]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=f"test-{uuid.uuid4().hex[:8]}",
                             value_deserializer=lambda b: json.loads(b))
    out: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(r.value for r in records)
    finally:
        consumer.close()
    return out


def test_pipeline_topics_exist_with_their_configs(services: Settings) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap_servers)
    try:
        described = {t.get("name") or t.get("topic"): t for t in admin.describe_topics(
            [services.metrics_topic, services.intensity_topic, services.dlq_topic])}
        assert len(described[services.metrics_topic]["partitions"]) \
            == services.metrics_partitions
        res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC,
                                                     services.intensity_topic)])
        text = repr(res)
        assert "cleanup.policy" in text and "compact" in text
    finally:
        admin.close()


def test_kafka_produce_consume_roundtrip(unique_topics: Settings) -> None:
    values = [{"run_id": "r1", "seq": i} for i in range(20)]
    _produce(unique_topics, unique_topics.metrics_topic, values)
    got = _consume_all(unique_topics, unique_topics.metrics_topic, len(values))
    assert sorted(v["seq"] for v in got) == list(range(20))  # type: ignore[type-var]


def test_mongo_upsert_roundtrip(unique_topics: Settings) -> None:
    from pymongo import MongoClient, UpdateOne

    client: MongoClient = MongoClient(unique_topics.mongo_uri,
                                      serverSelectionTimeoutMS=5000)
    try:
        col = client[unique_topics.mongo_db]["runs"]
        ops = [UpdateOne({"_id": "r1"}, {"$inc": {"energy_kwh": 0.5, "n": 1},
                                         "$set": {"user": "ana"},
                                         "$min": {"first_ts": i}, "$max": {"last_ts": i}},
                         upsert=True) for i in (5, 3, 9)]
        col.bulk_write(ops, ordered=True)
        doc = col.find_one({"_id": "r1"})
        assert doc == {"_id": "r1", "energy_kwh": 1.5, "n": 3, "user": "ana",
                       "first_ts": 3, "last_ts": 9}
        # One accumulator per $group: FerretDB 1.24 zeroes every accumulator after the first.
        total = list(col.aggregate([{"$match": {"user": "ana"}},
                                    {"$group": {"_id": "$user", "kwh": {"$sum": "$energy_kwh"}}}]))
        assert total == [{"_id": "ana", "kwh": 1.5}]
    finally:
        client.close()


def test_kafka_restart_keeps_data(private_kafka: Settings) -> None:
    """Stop/start keeps topics and records; on a private broker (see conftest)."""
    s = private_kafka
    pid = stack.running_pid(s, "kafka")
    assert pid is not None
    assert stack.start_kafka(s) == pid  # idempotent: a healthy broker is left alone
    _produce(s, s.dlq_topic, [{"before": "restart"}])
    assert stack.stop_kafka(s)
    assert not stack.kafka_healthy(s)
    assert stack.status(s)["kafka"].pid is None
    assert not stack.stop_kafka(s)  # nothing left to stop
    stack.start_kafka(s)
    got = _consume_all(s, s.dlq_topic, 1, timeout_s=60)
    assert got == [{"before": "restart"}]
    assert s.metrics_topic in _topics(s)


def _topics(settings: Settings) -> set[str]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def test_spark_batch_reads_kafka_with_local_jars(unique_topics: Settings) -> None:
    pyspark = pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    jars = sorted(unique_topics.spark_jars_dir.glob("*.jar"))
    assert any(j.name.startswith("spark-sql-kafka") for j in jars), unique_topics.spark_jars_dir
    _produce(unique_topics, unique_topics.intensity_topic,
             [{"zone": "GB", "g": 100 + i} for i in range(5)])
    spark = (SparkSession.builder.master("local[1]").appName("carbonpipe-jar-check")
             .config("spark.jars", ",".join(str(j) for j in jars))
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "1").getOrCreate())
    try:
        df = (spark.read.format("kafka")
              .option("kafka.bootstrap.servers", unique_topics.kafka_bootstrap_servers)
              .option("subscribe", unique_topics.intensity_topic)
              .option("startingOffsets", "earliest").load())
        values = sorted(json.loads(r.value)["g"] for r in
                        df.selectExpr("CAST(value AS STRING) AS value").collect())
        assert values == [100, 101, 102, 103, 104]
        assert pyspark.__version__.startswith("4.1")
    finally:
        spark.stop()
