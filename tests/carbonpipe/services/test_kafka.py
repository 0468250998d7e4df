"""Kafka without starting it: the cluster id, the generated config, the missing-jars error."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from carbonpipe.core.config import load_settings
from carbonpipe.services import kafka
from carbonpipe.services.process import StackError
from carbonpipe.services.service import home_layout


def test_cluster_id_is_a_kafka_uuid() -> None:
    cid = kafka.cluster_id()
    assert len(cid) == 22 and len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_kafka_properties_follow_settings(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path, kafka_bootstrap_servers="127.0.0.1:19092")
    props = kafka.properties(s, home_layout(s))
    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in props
    assert "controller.quorum.bootstrap.servers=127.0.0.1:19093" in props
    assert f"log.dirs={tmp_path.resolve() / 'kafka' / 'data'}" in props


def test_missing_jars_error_says_what_to_do(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path, kafka_bootstrap_servers="127.0.0.1:1")  # nothing answers
    with pytest.raises(StackError, match="carbonpipe up"):
        kafka.start_kafka(s, wait=False)
    assert not s.layout.pid_file("kafka").exists()
