"""Shared fixtures: the real Kafka + MongoDB-compatible services, started once per session.

Integration tests (``@pytest.mark.integration``) take ``services`` (the Settings pointing at
the running stack) or ``unique_topics`` (a Settings copy with topics and a database of their
own, so tests never see each other's data). Tests that stop Kafka take ``private_kafka``.
Services already running (``carbonpipe up``) are
reused and left running; the ones this session started are stopped at its end unless
``CARBONPIPE_KEEP_SERVICES=1``, which makes repeated runs start in seconds.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbonpipe.core.config import Settings, load_settings
from carbonpipe.intensity.trace import shared_traces_dir
from carbonpipe.services import stack


@pytest.fixture(scope="session")
def services() -> Iterator[Settings]:
    """Build if needed, start Kafka + the default MongoDB once, create the pipeline topics."""
    settings = load_settings()
    wanted = ["kafka", "mongo"]
    was_up = {name: stack.healthy(settings, name) for name in wanted}
    try:
        stack.ensure_built(settings)  # every part: private_kafka needs the jars even when a
        stack.up(settings)  # broker already answers; then start both and create the topics
    except stack.StackError as exc:
        pytest.fail(f"local services could not start: {exc}", pytrace=False)
    yield settings
    if os.environ.get("CARBONPIPE_KEEP_SERVICES") == "1":
        return
    for name in wanted:
        if not was_up[name]:
            stack.stop_service(settings, name)


@pytest.fixture()
def unique_topics(services: Settings) -> Iterator[Settings]:
    """A Settings copy whose topics and mongo_db are unique to this test (topics created)."""
    suffix = uuid.uuid4().hex[:10]
    settings = services.model_copy(update={
        "metrics_topic": f"{services.metrics_topic}.t{suffix}",
        "intensity_topic": f"{services.intensity_topic}.t{suffix}",
        "dlq_topic": f"{services.dlq_topic}.t{suffix}",
        "alerts_topic": f"{services.alerts_topic}.t{suffix}",
        "mongo_db": f"{services.mongo_db}_t{suffix}",
    })
    stack.create_topics(settings)
    yield settings
    _cleanup(settings)


@pytest.fixture()
def private_kafka(services: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A Settings copy with a Kafka of its own (own home, free ports), started, topics made.

    For tests that stop and restart the broker: doing that to the shared one would break
    every other test and session using it. Costs one broker start (~5-10 s here).
    """
    home = tmp_path / "kafka-home"
    (home / "jars").mkdir(parents=True)
    (home / "jars" / "kafka").symlink_to(stack.kafka_jars(services.layout))
    port = _free_port_pair()
    settings = services.model_copy(update={"home": home,
                                           "kafka_bootstrap_servers": f"127.0.0.1:{port}"})
    try:
        stack.start_kafka(settings)
        stack.create_topics(settings)
        yield settings
    finally:
        stack.stop_kafka(settings)


def _free_port_pair() -> int:
    """A port p with p and p+1 free (broker + controller)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports on 127.0.0.1")


def _cleanup(settings: Settings) -> None:
    """Best effort: drop the test's topics and database so a long-lived stack stays small."""
    from kafka.admin import KafkaAdminClient
    from pymongo import MongoClient

    with contextlib.suppress(Exception):
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        try:
            admin.delete_topics(list(stack.topic_specs(settings)))
        finally:
            admin.close()
    with contextlib.suppress(Exception):
        client: MongoClient = MongoClient(settings.mongo_uri,
                                          serverSelectionTimeoutMS=2000)
        try:
            client.drop_database(settings.mongo_db)
        finally:
            client.close()


@pytest.fixture(scope="session")
def traces_dir() -> Path:
    d = shared_traces_dir()
    if d is None:
        pytest.skip(
            "shared traces not found: ../shared/data/carbon-intensity is absent "
            "(set CARBONPIPE_SHARED_DIR to the shared directory)"
        )
    return d
