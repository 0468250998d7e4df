"""The pipeline's topics are declared once, from the settings."""

from __future__ import annotations

from pathlib import Path

from carbonpipe.core.config import load_settings
from carbonpipe.services.topics import topic_specs


def test_topic_specs_from_settings(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path, metrics_partitions=5)
    specs = topic_specs(s)
    assert specs[s.metrics_topic] == (5, {"retention.ms": "-1",  # the log keeps history
                                         "message.timestamp.type": "LogAppendTime"})
    assert specs[s.intensity_topic][1] == {"cleanup.policy": "compact"}
    assert specs[s.dlq_topic][1] == {"retention.ms": "-1"}  # dead letters stay replayable
