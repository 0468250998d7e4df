"""Kafka 4 in KRaft mode (broker and controller in one JVM), run from Maven-resolved jars.

The controller listens on the broker port + 1, so one setting
(``CARBONPIPE_KAFKA_BOOTSTRAP_SERVERS``) places both. ``server.properties`` is written on
every start from the settings, so it can never drift from them. By default the broker speaks
PLAINTEXT on loopback; ``start_kafka(..., security=BrokerSecurity(...))`` gives it a SASL_SSL
listener with SCRAM users and ACLs instead (the secured integration test, a hardened host).
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import SecretStr

from carbonpipe.core import kafka_security
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
                                 client_id="carbonpipe-health",
                                 **kafka_security.python_kwargs(settings))
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


@dataclass(frozen=True)
class BrokerSecurity:
    """A SASL_SSL broker with ACLs: one listener for clients (TLS, SCRAM), a controller
    listener that also needs a password (SASL/PLAIN: KRaft cannot use SCRAM there), the
    StandardAuthorizer with ``allow.everyone.if.no.acl.found=false`` and one super user, the
    broker's own principal. Other users and ACLs are made through the Admin API once it runs
    (``carbonpipe.services.acls``).
    """

    keystore: Path  # PEM: the broker's certificate chain and its encrypted PKCS#8 key
    key_password: SecretStr
    truststore: Path  # PEM: the CA the broker's own (inter-broker) client trusts
    admin_user: str = "admin"
    admin_password: SecretStr = field(default_factory=lambda: SecretStr(uuid.uuid4().hex))
    mechanism: str = "SCRAM-SHA-512"  # of the inter-broker link and the admin's credential

    def server_properties(self, host: str, port: int, cport: int) -> list[str]:
        """Listener, SASL, TLS and authorizer lines (0600 on disk: they hold passwords)."""
        user, pw = self.admin_user, self.admin_password.get_secret_value()
        q = kafka_security.jaas_quote
        plain = (f"org.apache.kafka.common.security.plain.PlainLoginModule required "
                 f"username={q(user)} password={q(pw)} user_{user}={q(pw)};")
        scram = kafka_security.jaas_config(self.mechanism, user, pw)
        return [
            f"listeners=SASL_SSL://{host}:{port},CONTROLLER://{host}:{cport}",
            f"advertised.listeners=SASL_SSL://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=SASL_SSL",
            "listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
            "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
            f"sasl.mechanism.inter.broker.protocol={self.mechanism}",
            *(f"listener.name.sasl_ssl.{m.lower()}.sasl.jaas.config={scram}"
              for m in ("SCRAM-SHA-256", "SCRAM-SHA-512")),
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.controller.plain.sasl.jaas.config={plain}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.keystore}",
            f"ssl.key.password={self.key_password.get_secret_value()}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.truststore}",
            "ssl.client.auth=none",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            f"super.users=User:{user}",
        ]

    def format_args(self) -> list[str]:
        """``kafka-storage format`` arguments that create the admin's SCRAM credential (the
        inter-broker link authenticates with it before any Admin API call could make it)."""
        pw = self.admin_password.get_secret_value()
        if not all(c.isalnum() or c in "-_.~" for c in pw + self.admin_user):
            raise StackError("the broker admin's name and password go through kafka-storage's "
                             "--add-scram syntax: letters, digits and - _ . ~ only")
        return [f"--add-scram={self.mechanism}=[name={self.admin_user},password={pw}]"]


def properties(settings: Settings, layout: Layout, security: BrokerSecurity | None = None) -> str:
    host, port, cport = addresses(settings)
    listeners = security.server_properties(host, port, cport) if security else [
        f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
        f"advertised.listeners=PLAINTEXT://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    ]
    return "\n".join([
        "# Written by carbonpipe.services.kafka on every start; edit the code, not this file.",
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.bootstrap.servers={host}:{cport}",
        *listeners,
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


def _format_storage(layout: Layout, security: BrokerSecurity | None = None) -> None:
    data = data_dir(layout)
    if (data / "meta.properties").exists():
        return
    say(f"kafka: formatting KRaft storage in {data}")
    data.mkdir(parents=True, exist_ok=True)
    cmd = _java_cmd(layout, ["kafka.tools.StorageTool", "format", "--standalone",
                             f"--cluster-id={cluster_id()}", "-c", str(config_file(layout)),
                             *(security.format_args() if security else [])])
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=layout.kafka)
    if res.returncode != 0:
        said = (res.stdout + res.stderr).strip()
        if security:  # the tool may echo its arguments, the admin password among them
            said = said.replace(security.admin_password.get_secret_value(), "***")
        raise StackError(f"kafka storage format failed: {said}")


def _prepare(settings: Settings, layout: Layout,
             security: BrokerSecurity | None = None) -> tuple[list[str], Path]:
    if not any(build.kafka_jars(layout).glob(build.KAFKA_JAR)):
        raise StackError(f"kafka jars missing in {build.kafka_jars(layout)}: run `carbonpipe up` "
                         "or `make setup` (Maven resolves them)")
    layout.kafka.mkdir(parents=True, exist_ok=True)
    conf = config_file(layout)
    conf.touch(mode=0o600)
    conf.chmod(0o600)  # it may hold passwords (BrokerSecurity); never world-readable
    conf.write_text(properties(settings, layout, security))
    _format_storage(layout, security)
    return _java_cmd(layout, ["kafka.Kafka", str(conf)]), layout.kafka


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


def start_kafka(settings: Settings, wait: bool = True, timeout_s: float = 90.0,
                security: BrokerSecurity | None = None) -> int | None:
    """Start the broker unless it already runs; returns our pid (None: someone else's broker).

    ``security``: run it SASL_SSL with ACLs; ``settings`` must then carry client security
    that the broker accepts (the admin's, say), since readiness is probed through it.
    """
    service = KAFKA
    if security is not None:
        service = replace(KAFKA, prepare=lambda s, lay: _prepare(s, lay, security))
    return service.start(settings, wait, timeout_s)


def stop_kafka(settings: Settings) -> bool:
    return KAFKA.stop(settings)
