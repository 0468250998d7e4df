"""The pipeline's topics are declared once, from the settings."""

from __future__ import annotations

from pathlib import Path

from carbonpipe.core.config import load_settings
from carbonpipe.services.topics import topic_specs


def test_topic_specs_from_settings(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path, metrics_partitions=5)
    specs = topic_specs(s)
    isr = {"min.insync.replicas": "1"}  # the single local broker
    assert specs[s.metrics_topic] == (5, {"retention.ms": "-1",  # the log keeps history
                                         "message.timestamp.type": "LogAppendTime", **isr})
    assert specs[s.intensity_topic][1] == {"cleanup.policy": "compact", **isr}
    assert specs[s.dlq_topic][1] == {"retention.ms": "-1", **isr}  # dead letters stay replayable


def test_replicated_topics_need_two_copies_per_write(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path, kafka_replication_factor=3, kafka_min_insync_replicas=2)
    assert {spec[1]["min.insync.replicas"] for spec in topic_specs(s).values()} == {"2"}
