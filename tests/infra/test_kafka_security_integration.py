"""The pipeline through a SASL_SSL broker with ACLs and host topics (issue 16, Kafka part).

The test makes its own CA and broker certificate (openssl), starts the project's Kafka
(``start_kafka(..., security=BrokerSecurity)``: SCRAM, TLS, StandardAuthorizer,
``allow.everyone.if.no.acl.found=false``) in a home and on ports of its own, creates SCRAM
users and ACLs through the Admin API, runs a real collector and the streaming job through it
and checks: exact totals in MongoDB; a collector principal's events that claim another host
dead-lettered ``host_mismatch``; that principal denied another host's topic and any read.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from carbonpipe.core.config import Settings
from carbonpipe.core.kafka_security import host_topic, python_kwargs
from carbonpipe.core.units import DEVICES, J_PER_KWH
from carbonpipe.core.versions import newest
from carbonpipe.services import acls, stack
from carbonpipe.services.kafka import BrokerSecurity, start_kafka, stop_kafka
from collector.runner import build_collector
from spark_jobs import dlq
from tests.collector.fake_sysfs import FakePowercap
from tests.conftest import _free_port_pair
from tests.spark_jobs.job_runs import job_settings, run_job

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COLLECTOR, JOB = "collector-a", "stream-job"
# The job's password goes through Spark's JAAS option: quotes and backslashes must survive.
JOB_PW = SecretStr('j0b "pa\\ss" ;=')


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(d: Path, key_password: str) -> tuple[Path, Path]:
    """A CA and a broker certificate for 127.0.0.1/localhost -> (broker keystore PEM, CA PEM).

    The broker key is PKCS#8, encrypted with PBE-SHA1-3DES: Kafka's PEM keystore cannot read
    OpenSSL 3's default (PBES2) encryption ("PBES2 SecretKeyFactory not available").
    """
    d.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", "2", "-subj", "/CN=carbonpipe-test-ca", cwd=d)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out",
             "broker.csr", "-subj", "/CN=localhost", cwd=d)  # fmt: skip
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "broker.crt", "-days", "2", "-extfile", "san.cnf",
             cwd=d)  # fmt: skip
    _openssl("pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-in", "broker.key", "-out",
             "broker.p8", "-passout", f"pass:{key_password}", cwd=d)  # fmt: skip
    keystore = d / "broker-keystore.pem"
    keystore.write_text("".join((d / f).read_text() for f in ("broker.p8", "broker.crt")))
    keystore.chmod(0o600)
    return keystore, d / "ca.pem"


def as_user(settings: Settings, user: str, password: SecretStr) -> Settings:
    return settings.model_copy(update={"kafka_sasl_username": user,
                                       "kafka_sasl_password": password})  # fmt: skip


@pytest.fixture()
def secure(services: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Admin settings for a SASL_SSL broker of the test's own, users and ACLs made."""
    home = tmp_path / "kafka-home"
    (home / "jars").mkdir(parents=True)
    (home / "jars" / "kafka").symlink_to(stack.kafka_jars(services.layout))
    (home / "jars" / "spark").symlink_to(services.spark_jars_dir)  # the job's subprocess
    key_pw, admin_pw = uuid.uuid4().hex, SecretStr(uuid.uuid4().hex)
    keystore, ca = make_certificates(tmp_path / "tls", key_pw)
    security = BrokerSecurity(keystore=keystore, key_password=SecretStr(key_pw), truststore=ca,
                              admin_password=admin_pw)  # fmt: skip
    suffix = uuid.uuid4().hex[:8]
    admin = services.model_copy(update={
        "home": home,
        "kafka_bootstrap_servers": f"127.0.0.1:{_free_port_pair()}",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": security.admin_user,
        "kafka_sasl_password": admin_pw,
        "kafka_ssl_cafile": ca,
        "kafka_host_topics": True,
        "mongo_db": f"{services.mongo_db}_sec{suffix}",
        "metrics_partitions": 1,
    })  # fmt: skip
    try:
        start_kafka(admin, security=security)
        stack.create_topics(admin)
        yield admin
    finally:
        stop_kafka(admin)  # the topics go with the test's home
        drop_db(admin)


def drop_db(settings: Settings) -> None:
    from pymongo import MongoClient

    client: Any = MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=2000)
    try:
        client.drop_database(settings.mongo_db)
    finally:
        client.close()


def energy_kwh(e: dict[str, Any]) -> float:
    """The job's rule: per device the energy in J, else power x interval."""
    j = 0.0
    for dev in DEVICES:
        v = e.get(f"{dev}_energy_j")
        if v is None and e.get(f"{dev}_power_w") is not None:
            v = e[f"{dev}_power_w"] * e["interval_s"]
        j += v or 0.0
    return j / J_PER_KWH


def read_topic(settings: Settings, topic: str) -> list[dict[str, Any]]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                             enable_auto_commit=False, **python_kwargs(settings))  # fmt: skip
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: list[dict[str, Any]] = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for recs in consumer.poll(timeout_ms=10_000).values():
                out += [json.loads(r.value) for r in recs]
        return out
    finally:
        consumer.close()


def test_pipeline_through_sasl_ssl_with_host_identity(secure: Settings, tmp_path: Path) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.errors import KafkaError, TopicAuthorizationFailedError

    host = socket.gethostname()
    try:
        own_topic = host_topic(secure, host)
    except ValueError as exc:
        pytest.skip(f"this host's name cannot name a topic: {exc}")
    col_pw = SecretStr(uuid.uuid4().hex)
    acls.add_scram_users(secure, {COLLECTOR: col_pw, JOB: JOB_PW})
    acls.grant_job(secure, JOB)
    assert acls.grant_collector(secure, host, COLLECTOR) == own_topic
    other_topic = acls.grant_collector(secure, "victim-host", "collector-victim")
    collector = as_user(secure, COLLECTOR, col_pw)

    # 1. a real collector (fake RAPL counters), authenticated as its own principal
    powercap = FakePowercap(tmp_path / "sys")
    powercap.package(0)
    col_settings = collector.model_copy(update={
        "zone": "GB", "sysfs_root": tmp_path / "sys", "spool_dir": tmp_path / "spool",
    })  # fmt: skip
    run_id = f"sec-{uuid.uuid4().hex[:8]}"
    col = build_collector(col_settings, run_id=run_id, user_id="alice", model_name="m",
                          interval_s=0.2).start()  # fmt: skip
    try:
        for _ in range(10):
            powercap.advance("intel-rapl:0", 25.0)
            time.sleep(0.1)
    finally:
        assert col.stop() == 0, "events left in the spool: the secured broker refused them"
    sent = read_topic(secure, own_topic)  # as admin
    assert sent and all(e["host"] == host and e["run_id"] == run_id for e in sent)

    # 2. the same principal forges events for another host (same run id, another user)
    forged = [{**sent[0], "host": "victim-host", "user_id": "mallory", "seq": 10_000 + i,
               "cpu_energy_j": 1e9} for i in range(3)]  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=collector.kafka_bootstrap_servers, acks="all",
                             **python_kwargs(collector))  # fmt: skip
    try:
        for e in forged:  # on its own topic: accepted by Kafka, rejected by the job
            producer.send(own_topic, key=run_id.encode(), value=json.dumps(e).encode()).get(30)
        with pytest.raises(KafkaError) as denied:  # on the victim's topic: refused by Kafka
            producer.send(other_topic, value=json.dumps(forged[0]).encode()).get(30)
        assert "Authorization" in type(denied.value).__name__ or "uthoriz" in str(denied.value)
    finally:
        producer.close(timeout=5)

    # 3. a collector principal cannot read, not even its own topic
    consumer = KafkaConsumer(bootstrap_servers=collector.kafka_bootstrap_servers,
                             enable_auto_commit=False, **python_kwargs(collector))  # fmt: skip
    try:
        consumer.assign([TopicPartition(own_topic, 0)])
        consumer.seek(TopicPartition(own_topic, 0), 0)
        with pytest.raises(TopicAuthorizationFailedError):
            for _ in range(10):
                consumer.poll(timeout_ms=2000)
    finally:
        consumer.close()

    # 4. the streaming job, as its own principal (password with quotes through Spark's JAAS)
    job = job_settings(as_user(secure, JOB, JOB_PW), tmp_path)
    status, out = run_job(job, tmp_path / "stream.log", "--once", timeout_s=600)
    assert status == 0, out[-4000:]
    assert JOB_PW.get_secret_value() not in out and col_pw.get_secret_value() not in out

    from pymongo import MongoClient

    client: Any = MongoClient(job.mongo_uri, serverSelectionTimeoutMS=5000)
    try:
        runs = {d["run_id"]: d for d in newest(client[job.mongo_db]["runs"].find())}
    finally:
        client.close()
    run = runs[run_id]
    assert run["n_events"] == len(sent)
    assert run["energy_kwh"] == pytest.approx(sum(energy_kwh(e) for e in sent), rel=1e-9)
    assert run["user_id"] == "alice"  # the forged events moved nothing to mallory
    letters = dlq.read_letters(secure)  # as admin
    assert sorted(d.reason for d in letters) == ["host_mismatch"] * len(forged)
    assert {json.loads(d.raw or "{}")["host"] for d in letters} == {"victim-host"}
    assert all(d.topic == own_topic for d in letters)
