"""Kafka 4 in KRaft mode (broker and controller in one JVM), run from Maven-resolved jars.

The controller listens on the broker port + 1, so one setting
(``CARBONPIPE_KAFKA_BOOTSTRAP_SERVERS``) places both. ``server.properties`` is written on
every start from the settings, so it can never drift from them.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import uuid
from pathlib import Path

from carbonpipe.core.config import Settings
from carbonpipe.core.layout import Layout
from carbonpipe.services import build
from carbonpipe.services.process import StackError
from carbonpipe.services.service import Service, port_open, say

DEFAULT_HEAP = "-Xmx512m -Xms128m"  # KAFKA_HEAP_OPTS overrides, as for Kafka's own scripts


def data_dir(layout: Layout) -> Path:
    return layout.kafka / "data"


def config_file(layout: Layout) -> Path:
    return layout.kafka / "server.properties"


def log_file(layout: Layout) -> Path:
    """Kafka's own log4j file (``infra/kafka/log4j2.properties``): the one to read."""
    return layout.logs / "kafka-server.log"


def output_file(layout: Layout) -> Path:
    """The JVM's stdout/stderr: start-up failures before log4j is up land here."""
    return layout.logs / "kafka.out"


def addresses(settings: Settings) -> tuple[str, int, int]:
    """(host, broker port, controller port): the controller listens on broker port + 1."""
    host, _, port = settings.kafka_bootstrap_servers.split(",")[0].strip().rpartition(":")
    return host or "127.0.0.1", int(port), int(port) + 1


def healthy(settings: Settings, timeout_s: float = 3.0) -> bool:
    """The broker answers a metadata request (not just an open port)."""
    host, port, _ = addresses(settings)
    if not port_open(host, port):
        return False
    from kafka import KafkaAdminClient  # imported late: keeps `carbonpipe --help` fast

    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
                                 request_timeout_ms=int(timeout_s * 1000),
                                 client_id="carbonpipe-health")
    except Exception:
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            admin.close()


def properties(settings: Settings, layout: Layout) -> str:
    host, port, cport = addresses(settings)
    return "\n".join([
        "# Written by carbonpipe.services.kafka on every start; edit the code, not this file.",
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.bootstrap.servers={host}:{cport}",
        f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
        f"advertised.listeners=PLAINTEXT://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={data_dir(layout)}",
        "num.partitions=1",
        "num.network.threads=2",
        "num.io.threads=2",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=4",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=true",
        "log.retention.hours=168",
        "log.segment.bytes=134217728",
        "",
    ])


def _java_cmd(layout: Layout, main: list[str]) -> list[str]:
    heap = os.environ.get("KAFKA_HEAP_OPTS", DEFAULT_HEAP).split()
    return [
        build.java(), *heap, "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={build.INFRA / 'kafka' / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={layout.logs}",
        "-cp", f"{build.kafka_jars(layout)}/*", *main,
    ]


def cluster_id() -> str:
    """Kafka's Uuid text form (url-safe base64, no padding) without a JVM start. It may start
    with ``-``: pass it as ``--cluster-id=ID``, never as a separate argument (an option)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _format_storage(layout: Layout) -> None:
    data = data_dir(layout)
    if (data / "meta.properties").exists():
        return
    say(f"kafka: formatting KRaft storage in {data}")
    data.mkdir(parents=True, exist_ok=True)
    cmd = _java_cmd(layout, ["kafka.tools.StorageTool", "format", "--standalone",
                             f"--cluster-id={cluster_id()}", "-c", str(config_file(layout))])
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=layout.kafka)
    if res.returncode != 0:
        raise StackError(f"kafka storage format failed: {(res.stdout + res.stderr).strip()}")


def _prepare(settings: Settings, layout: Layout) -> tuple[list[str], Path]:
    if not any(build.kafka_jars(layout).glob(build.KAFKA_JAR)):
        raise StackError(f"kafka jars missing in {build.kafka_jars(layout)}: run `carbonpipe up` "
                         "or `make setup` (Maven resolves them)")
    layout.kafka.mkdir(parents=True, exist_ok=True)
    config_file(layout).write_text(properties(settings, layout))
    _format_storage(layout)
    return _java_cmd(layout, ["kafka.Kafka", str(config_file(layout))]), layout.kafka


def _address(settings: Settings) -> str:
    host, port, _ = addresses(settings)
    return f"{host}:{port}"


def _ports(settings: Settings) -> list[tuple[str, int]]:
    host, port, cport = addresses(settings)
    return [(host, port), (host, cport)]


KAFKA = Service(
    name="kafka", program="Kafka", healthy=healthy, address=_address, ports=_ports,
    port_setting="CARBONPIPE_KAFKA_BOOTSTRAP_SERVERS", log=log_file, output=output_file,
    prepare=_prepare,
)


def start_kafka(settings: Settings, wait: bool = True, timeout_s: float = 90.0) -> int | None:
    """Start the broker unless it already runs; returns our pid (None: someone else's broker)."""
    return KAFKA.start(settings, wait, timeout_s)


def stop_kafka(settings: Settings) -> bool:
    return KAFKA.stop(settings)
