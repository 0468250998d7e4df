"""Test harness: runs the real streaming job in a subprocess against the real services."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from carbonpipe.core.config import REPO_ROOT, Settings

ENV_FIELDS = (
    "kafka_bootstrap_servers", "metrics_topic", "intensity_topic", "dlq_topic", "mongo_db",
    "cold_store_uri", "checkpoint_uri", "trigger_s", "lateness_s", "window_s", "home",
    "cold_events", "spark_master",
    # Kafka client security (the secured integration test); secrets are unwrapped below
    "kafka_security_protocol", "kafka_sasl_mechanism", "kafka_sasl_username",
    "kafka_sasl_password", "kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile",
    "kafka_ssl_key_password", "kafka_host_topics",
)  # fmt: skip


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    from pydantic import SecretStr

    env = dict(os.environ)
    for f in ENV_FIELDS:
        v = getattr(settings, f)
        if isinstance(v, SecretStr):
            v = v.get_secret_value()
        if v is not None:
            env[f"CARBONPIPE_{f.upper()}"] = str(v)
    if settings.mongo_uri:
        env["CARBONPIPE_MONGO_URI"] = settings.mongo_uri
    env.update(extra)
    return env


class StreamJob:
    """``python -m spark_jobs.stream`` (or ``cmd``, e.g. a ``spark-submit`` of it) with its log
    in a file the test can show on failure."""

    def __init__(self, settings: Settings, log_path: Path, cmd: list[str] | None = None,
                 **extra_env: str) -> None:
        self.log_path = log_path
        self.settings = settings
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd or [sys.executable, "-m", "spark_jobs.stream"],
            cwd=REPO_ROOT,
            env=settings_env(settings, **extra_env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int | None:
        if self.alive():
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode

    def tail(self, n: int = 60) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(line for line in lines[-n:])

    def settled(self) -> bool:
        """Every batch readers can see in the hot store is finished: its cold-store writes
        and the job's state are done too (a batch writes MongoDB first, Parquet after).

        A hot store that does not answer within 3 s (a fault test stopped it) settles
        nothing: the job cannot finish a batch without it, so there is nothing to wait for."""
        from pymongo.errors import PyMongoError

        from carbonpipe.core.mongo import mongo_client

        client = mongo_client(self.settings.mongo_uri, timeout_s=3.0)
        try:
            db = client[self.settings.mongo_db]
            hot = db["stats"].find_one({}, {"batch_id": 1}, sort=[("batch_id", -1)])
            if hot is None:
                return True
            done = db["job_state"].find_one({}, {"_id": 1}, sort=[("_id", -1)])
            return done is not None and int(done["_id"]) >= int(hot["batch_id"])
        except PyMongoError:
            return True
        finally:
            client.close()


def produce(settings: Settings, topic: str, records: Iterable[tuple[str | None, Any]]) -> None:
    from kafka import KafkaProducer

    from carbonpipe.core.kafka_security import python_kwargs

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all",
                             **python_kwargs(settings))
    for key, value in records:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        producer.send(topic, key=key.encode() if key else None, value=raw)
    producer.flush()
    producer.close()


def consume_all(settings: Settings, topic: str, timeout_s: float = 10) -> list[Any]:
    from kafka import KafkaConsumer

    from carbonpipe.core.kafka_security import python_kwargs

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        **python_kwargs(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    msgs = list(consumer)
    consumer.close()
    return msgs


def wait_for(
    what: str, check: Callable[[], bool], job: StreamJob | None, timeout_s: float = 300
) -> None:
    """Polls ``check`` until true; with ``job``, then until the job has also finished the batch
    that made it true (readers see a batch before its Parquet writes are done)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            if job is None or not job.alive():
                return
            while time.monotonic() < deadline and job.alive():
                if job.settled():
                    return
                time.sleep(0.5)
            if job.settled():
                return
            continue
        if job is not None and not job.alive():
            raise AssertionError(f"stream job exited while waiting for {what}:\n{job.tail()}")
        time.sleep(1.0)
    tail = job.tail() if job else ""
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\n{tail}")
