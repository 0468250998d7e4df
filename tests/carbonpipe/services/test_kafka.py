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


def test_a_secured_broker_has_sasl_ssl_acls_and_no_plaintext_listener(tmp_path: Path) -> None:
    from pydantic import SecretStr

    s = load_settings(home=tmp_path, kafka_bootstrap_servers="127.0.0.1:19092")
    sec = kafka.BrokerSecurity(keystore=tmp_path / "ks.pem", key_password=SecretStr("kp"),
                               truststore=tmp_path / "ca.pem",
                               admin_password=SecretStr('ad"min'))  # fmt: skip
    props = kafka.properties(s, home_layout(s), sec)
    assert "listeners=SASL_SSL://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in props
    assert "PLAINTEXT://" not in props.replace("SASL_PLAINTEXT", "")
    assert "allow.everyone.if.no.acl.found=false" in props
    assert "super.users=User:admin" in props
    assert 'password="ad\\"min"' in props  # JAAS-quoted like a client's
    assert "admin" in repr(sec) and "ad\"min" not in repr(sec) and "kp" not in repr(sec)
    with pytest.raises(StackError, match="letters, digits"):  # kafka-storage's syntax
        sec.format_args()
    ok = kafka.BrokerSecurity(keystore=tmp_path, key_password=SecretStr("kp"), truststore=tmp_path,
                              admin_password=SecretStr("s3cr3t-x"))  # fmt: skip
    assert ok.format_args() == ["--add-scram=SCRAM-SHA-512=[name=admin,password=s3cr3t-x]"]
