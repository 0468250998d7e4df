"""carbonpipe.stack without starting anything: config generation, pid files, CLI wiring."""

from __future__ import annotations

import argparse
import base64
import os
from pathlib import Path

import pytest

from carbonpipe import stack
from carbonpipe.core.config import load_settings


def test_cluster_id_is_a_kafka_uuid() -> None:
    cid = stack._kafka_cluster_id()
    assert len(cid) == 22 and len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_kafka_properties_follow_settings(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path, kafka_bootstrap_servers="127.0.0.1:19092")
    props = stack._kafka_properties(s, stack.paths(s))
    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in props
    assert "controller.quorum.bootstrap.servers=127.0.0.1:19093" in props
    assert f"log.dirs={tmp_path.resolve() / 'kafka' / 'data'}" in props


def test_topic_specs_from_settings(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path, metrics_partitions=5)
    specs = stack.topic_specs(s)
    assert specs[s.metrics_topic] == (5, {})
    assert specs[s.intensity_topic][1] == {"cleanup.policy": "compact"}
    assert s.dlq_topic in specs


def test_stale_and_reused_pid_files_are_dropped(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path)
    p = stack.paths(s)
    p.run.mkdir(parents=True)
    p.pid_file("kafka").write_text("999999999 1\n")  # no such pid
    assert stack.running_pid(s, "kafka") is None
    assert not p.pid_file("kafka").exists()
    p.pid_file("mongo").write_text(f"{os.getpid()} 1\n")  # our pid, wrong start time
    assert stack.running_pid(s, "mongo") is None
    started = stack._proc_stat(os.getpid())
    assert started is not None
    p.pid_file("mongo").write_text(f"{os.getpid()} {started[1]}\n")
    assert stack.running_pid(s, "mongo") == os.getpid()


def test_cli_registers_up_down_status() -> None:
    parser = argparse.ArgumentParser()
    stack.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["up", "--services", "kafka"])
    assert args.services == ["kafka"] and args.func is stack._cmd_up
    assert parser.parse_args(["down"]).services == ["kafka", "mongo"]
    with pytest.raises(SystemExit):
        parser.parse_args(["up", "--services", "zookeeper"])


def test_missing_jars_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = load_settings(home=tmp_path, kafka_bootstrap_servers="127.0.0.1:1")
    monkeypatch.setattr(stack, "kafka_healthy", lambda *a, **k: False)
    with pytest.raises(stack.StackError, match="carbonpipe up"):
        stack.start_kafka(s, wait=False)
