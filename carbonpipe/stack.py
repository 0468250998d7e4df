"""Local services: a Kafka 4 KRaft broker and the embedded FerretDB, built and run by us.

No Docker here, so the project resolves Kafka's jars with Maven, builds FerretDB with Go, and
runs both as detached processes whose pid files live in ``<home>/run`` and logs in
``<home>/logs``. Every start is idempotent (a healthy service is left alone) and every error
names the log to read or the command to run. ``carbonpipe up|down|status`` wrap this module.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from carbonpipe.core.config import REPO_ROOT, Settings, get_settings

INFRA = REPO_ROOT / "infra"
SERVICES = ("kafka", "mongo")
FERRETDB_BIN = "ferretdb-embedded"
DEFAULT_KAFKA_HEAP = "-Xmx512m -Xms128m"


class StackError(RuntimeError):
    """A service could not be built, started or stopped; the message says what to do."""


def _say(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)


# ----------------------------------------------------------------------------- paths
@dataclass(frozen=True)
class Paths:
    """Every file the stack reads or writes, derived from ``settings.home``."""

    home: Path

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def kafka_jars(self) -> Path:
        return self.home / "jars" / "kafka"

    @property
    def kafka_dir(self) -> Path:
        return self.home / "kafka"

    @property
    def kafka_data(self) -> Path:
        return self.kafka_dir / "data"

    @property
    def kafka_config(self) -> Path:
        return self.kafka_dir / "server.properties"

    @property
    def ferretdb_bin(self) -> Path:
        return self.home / "bin" / FERRETDB_BIN

    @property
    def ferretdb_data(self) -> Path:
        return self.home / "ferretdb"

    def pid_file(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    def log_file(self, service: str) -> Path:
        """The log to read when ``service`` misbehaves (Kafka's own log4j file for Kafka)."""
        return self.logs / ("kafka-server.log" if service == "kafka" else "ferretdb.log")

    def stdout_file(self, service: str) -> Path:
        return self.logs / ("kafka.out" if service == "kafka" else "ferretdb.log")


def paths(settings: Settings) -> Paths:
    return Paths(Path(settings.home).resolve())


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    return host or "127.0.0.1", int(port)


def kafka_addresses(settings: Settings) -> tuple[str, int, int]:
    """(host, broker port, controller port): the controller listens on broker port + 1."""
    host, port = _host_port(settings.kafka_bootstrap_servers.split(",")[0])
    return host, port, port + 1


# ----------------------------------------------------------------------------- tools
def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    cand = Path(java_home) / "bin" / "java" if java_home else None
    java = str(cand) if cand and cand.exists() else shutil.which("java")
    if not java:
        raise StackError("Java 17 not found: apt-get install -y openjdk-17-jre-headless")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)', out)
    if not m or int(m.group(1)) < 17:
        raise StackError(
            f"Java 17+ needed, found {out.splitlines()[0] if out else '?'}: "
            "apt-get install -y openjdk-17-jre-headless (or set JAVA_HOME)"
        )
    return java


def _tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if not found:
        raise StackError(f"{name} not found: {hint}")
    return found


def _digest(sources: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for src in sources:
        h.update(src.read_bytes())
    return h.hexdigest()


def _stamp_ok(stamp: Path, *sources: Path) -> bool:
    """True when the output was built from the current ``sources``: a rebuild follows edits."""
    return stamp.exists() and stamp.read_text().strip() == _digest(sources)


def _write_stamp(stamp: Path, *sources: Path) -> None:
    stamp.write_text(_digest(sources) + "\n")


def _run_build(cmd: list[str], cwd: Path, log: Path, what: str, env: dict[str, str]) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with log.open("w") as fh:
        rc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        tail = "\n    ".join(log.read_text(errors="replace").splitlines()[-15:])
        raise StackError(f"{what} failed (exit {rc}); full log: {log}\n    {tail}")
    _say(f"{what}: done in {time.monotonic() - t0:.0f}s (log {log})")


def _maven_jars(pom: Path, out: Path, marker: str, what: str, logs: Path) -> None:
    stamp = out / ".built-from"
    ours = stamp.exists()
    if any(out.glob(marker)) and (not ours or _stamp_ok(stamp, pom)):
        return  # up to date, or jars provided by someone else (e.g. the Docker image)
    mvn = _tool("mvn", "apt-get install -y maven (needs Java 17 and access to Maven Central)")
    _say(f"{what}: resolving with Maven into {out} (first time downloads ~60 MB) ...")
    if ours:
        shutil.rmtree(out)  # pom changed: old versions must not stay on the classpath
    out.mkdir(parents=True, exist_ok=True)
    cmd = [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
           f"-DoutputDirectory={out}"]
    _run_build(cmd, pom.parent, logs / f"build-{pom.parent.name}.log", what, dict(os.environ))
    if not any(out.glob(marker)):
        raise StackError(f"{what}: Maven succeeded but {marker} is missing from {out}")
    _write_stamp(stamp, pom)


def _ferretdb_binary(p: Paths) -> None:
    src = INFRA / "ferretdb"
    sources = (src / "main.go", src / "go.mod", src / "go.sum")
    stamp = p.ferretdb_bin.with_suffix(".built-from")
    if p.ferretdb_bin.exists() and _stamp_ok(stamp, *sources):
        return
    go = _tool("go", "install Go >= 1.24 from https://go.dev/dl/ (it fetches FerretDB via GOPROXY)")
    _say(f"ferretdb: go build -> {p.ferretdb_bin} (first time: a few minutes) ...")
    p.ferretdb_bin.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "-mod=mod")
    env["CGO_ENABLED"] = "0"  # FerretDB's SQLite is pure Go; no C toolchain needed
    cmd = [go, "build", "-trimpath", "-o", str(p.ferretdb_bin), "."]
    _run_build(cmd, src, p.logs / "build-ferretdb.log", "ferretdb", env)
    _write_stamp(stamp, *sources)


def ensure_built(settings: Settings, parts: Iterable[str] = ("kafka", "spark", "mongo")) -> None:
    """Build what is missing: Kafka jars, Spark's Kafka connector jars, the FerretDB binary.

    Cheap when everything is there (a few stat calls and hashes), so callers just call it.
    """
    p = paths(settings)
    with _locked(p, "build"):
        _ensure_built(settings, p, set(parts))


def _ensure_built(settings: Settings, p: Paths, wanted: set[str]) -> None:
    if "kafka" in wanted:
        _java()
        _maven_jars(INFRA / "kafka" / "pom.xml", p.kafka_jars, "kafka_2.13-*.jar",
                    "kafka jars", p.logs)
    if "spark" in wanted:
        _maven_jars(INFRA / "spark" / "pom.xml", Path(settings.spark_jars_dir),
                    "spark-sql-kafka-*.jar", "spark kafka connector jars", p.logs)
    if "mongo" in wanted and settings.uses_embedded_mongo:
        _ferretdb_binary(p)


# ----------------------------------------------------------------------------- processes
@contextlib.contextmanager
def _locked(p: Paths, name: str) -> Iterator[None]:
    """Serialise start/stop/build across processes: test sessions and CLIs share one home."""
    p.run.mkdir(parents=True, exist_ok=True)
    with (p.run / f"{name}.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) from /proc, or None if no such pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], fields[19]


def _read_pid(p: Paths, service: str) -> tuple[int, str | None] | None:
    try:
        parts = p.pid_file(service).read_text().split()
        return int(parts[0]), (parts[1] if len(parts) > 1 else None)
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, started: str | None) -> bool:
    """Pid exists, is no zombie, and started when we recorded it (guards against pid reuse)."""
    st = _proc_stat(pid)
    return st is not None and st[0] != "Z" and (started is None or st[1] == started)


def running_pid(settings: Settings, service: str) -> int | None:
    """Pid of the service we started, or None (stale pid files are removed)."""
    p = paths(settings)
    rec = _read_pid(p, service)
    if rec is None:
        return None
    if _alive(*rec):
        return rec[0]
    p.pid_file(service).unlink(missing_ok=True)
    return None


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def kafka_healthy(settings: Settings, timeout_s: float = 3.0) -> bool:
    """The broker answers a metadata request (not just an open port)."""
    host, port, _ = kafka_addresses(settings)
    if not _port_open(host, port):
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


def mongo_healthy(settings: Settings, timeout_s: float = 2.0) -> bool:
    """A MongoDB ``ping`` succeeds against ``settings.mongo_uri``."""
    from pymongo import MongoClient

    client: MongoClient = MongoClient(settings.mongo_uri,
                                      serverSelectionTimeoutMS=int(timeout_s * 1000),
                                      connectTimeoutMS=int(timeout_s * 1000))
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()


def healthy(settings: Settings, service: str) -> bool:
    return kafka_healthy(settings) if service == "kafka" else mongo_healthy(settings)


def _spawn(p: Paths, service: str, cmd: list[str], cwd: Path) -> int:
    p.run.mkdir(parents=True, exist_ok=True)
    p.logs.mkdir(parents=True, exist_ok=True)
    out = p.stdout_file(service)
    with out.open("ab") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    st = _proc_stat(proc.pid)
    tmp = p.pid_file(service).with_suffix(".tmp")
    tmp.write_text(f"{proc.pid} {st[1] if st else ''}\n")
    tmp.replace(p.pid_file(service))  # atomic: readers never see a half-written file
    return proc.pid


# ----------------------------------------------------------------------------- kafka
def _kafka_properties(settings: Settings, p: Paths) -> str:
    host, port, cport = kafka_addresses(settings)
    return "\n".join([
        "# Written by carbonpipe.stack on every start; edit the code, not this file.",
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.bootstrap.servers={host}:{cport}",
        f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
        f"advertised.listeners=PLAINTEXT://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={p.kafka_data}",
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


def _kafka_java_cmd(settings: Settings, p: Paths, main: list[str]) -> list[str]:
    heap = os.environ.get("KAFKA_HEAP_OPTS", DEFAULT_KAFKA_HEAP).split()
    return [
        _java(), *heap, "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={INFRA / 'kafka' / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={p.logs}",
        "-cp", f"{p.kafka_jars}/*", *main,
    ]


def _kafka_cluster_id() -> str:
    """Kafka's Uuid text form (url-safe base64, no padding) without a JVM start."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _format_kafka(settings: Settings, p: Paths) -> None:
    if (p.kafka_data / "meta.properties").exists():
        return
    _say(f"kafka: formatting KRaft storage in {p.kafka_data}")
    p.kafka_data.mkdir(parents=True, exist_ok=True)
    cmd = _kafka_java_cmd(settings, p, ["kafka.tools.StorageTool", "format", "--standalone",
                                        "-t", _kafka_cluster_id(), "-c", str(p.kafka_config)])
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=p.kafka_dir)
    if res.returncode != 0:
        raise StackError(f"kafka storage format failed: {(res.stdout + res.stderr).strip()}")


def start_kafka(settings: Settings, wait: bool = True, timeout_s: float = 90.0) -> int | None:
    """Start the broker unless it already runs; returns our pid (None: someone else's broker)."""
    p = paths(settings)
    with _locked(p, "kafka"):
        return _start_kafka(settings, p, wait, timeout_s)


def _start_kafka(settings: Settings, p: Paths, wait: bool, timeout_s: float) -> int | None:
    pid = running_pid(settings, "kafka")
    if pid is not None:
        if wait:
            wait_ready(settings, ["kafka"], timeout_s)
        return pid
    host, port, cport = kafka_addresses(settings)
    if kafka_healthy(settings):
        _say(f"kafka: a broker not started by carbonpipe already serves {host}:{port}; using it")
        return None
    for busy in (port, cport):
        if _port_open(host, busy):
            raise StackError(f"kafka: port {host}:{busy} is taken by another program; free it "
                             "or set CARBONPIPE_KAFKA_BOOTSTRAP_SERVERS to another port")
    if not any(p.kafka_jars.glob("kafka_2.13-*.jar")):
        raise StackError(f"kafka jars missing in {p.kafka_jars}: run `carbonpipe up` "
                         "or `make setup` (Maven resolves them)")
    p.kafka_dir.mkdir(parents=True, exist_ok=True)
    p.kafka_config.write_text(_kafka_properties(settings, p))
    _format_kafka(settings, p)
    t0 = time.monotonic()
    pid = _spawn(p, "kafka", _kafka_java_cmd(settings, p, ["kafka.Kafka", str(p.kafka_config)]),
                 p.kafka_dir)
    _say(f"kafka: started pid {pid} on {host}:{port} (log {p.log_file('kafka')})")
    if wait:
        wait_ready(settings, ["kafka"], timeout_s)
        _say(f"kafka: ready in {time.monotonic() - t0:.1f}s")
    return pid


# ----------------------------------------------------------------------------- mongo
def start_mongo(settings: Settings, wait: bool = True, timeout_s: float = 60.0) -> int | None:
    """Start the embedded FerretDB, or do nothing when MONGO_URI points at a real MongoDB."""
    if not settings.uses_embedded_mongo:
        _say(f"mongo: using external MongoDB {_redact(settings.mongo_uri)} "
             "(MONGO_URI is set)")
        return None
    p = paths(settings)
    with _locked(p, "mongo"):
        return _start_mongo(settings, p, wait, timeout_s)


def _start_mongo(settings: Settings, p: Paths, wait: bool, timeout_s: float) -> int | None:
    pid = running_pid(settings, "mongo")
    if pid is not None:
        if wait:
            wait_ready(settings, ["mongo"], timeout_s)
        return pid
    if mongo_healthy(settings, timeout_s=1.0):
        _say(f"mongo: something already answers on port {settings.ferretdb_port}; using it")
        return None
    if _port_open("127.0.0.1", settings.ferretdb_port):
        raise StackError(f"mongo: port {settings.ferretdb_port} is taken by a non-MongoDB "
                         "program; free it or set CARBONPIPE_FERRETDB_PORT")
    if not p.ferretdb_bin.exists():
        raise StackError(f"{p.ferretdb_bin} missing: run `carbonpipe up` or `make setup`")
    p.ferretdb_data.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    cmd = [str(p.ferretdb_bin), f"-listen=127.0.0.1:{settings.ferretdb_port}",
           f"-dir={p.ferretdb_data}", "-log-level=error"]  # warn logs every endSessions
    pid = _spawn(p, "mongo", cmd, p.home)
    _say(f"mongo: started FerretDB pid {pid} on 127.0.0.1:{settings.ferretdb_port} "
         f"(log {p.log_file('mongo')})")
    if wait:
        wait_ready(settings, ["mongo"], timeout_s)
        _say(f"mongo: ready in {time.monotonic() - t0:.1f}s")
    return pid


# ----------------------------------------------------------------------------- readiness
def wait_ready(settings: Settings, services: Iterable[str] = SERVICES,
               timeout_s: float = 90.0) -> None:
    """Block until each service answers; fail fast if its process dies, naming the log."""
    p = paths(settings)
    for service in services:
        deadline = time.monotonic() + timeout_s
        ours = running_pid(settings, service) is not None
        while not healthy(settings, service):
            if ours and running_pid(settings, service) is None:
                raise StackError(f"{service} exited during start-up; read "
                                 f"{p.log_file(service)} and {p.stdout_file(service)}")
            if time.monotonic() > deadline:
                raise StackError(f"{service} not ready after {timeout_s:.0f}s; read "
                                 f"{p.log_file(service)}")
            time.sleep(0.5)


# ----------------------------------------------------------------------------- topics
def topic_specs(settings: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    """name -> (partitions, configs) of the topics the pipeline writes."""
    return {
        settings.metrics_topic: (settings.metrics_partitions, {}),
        settings.intensity_topic: (1, {"cleanup.policy": "compact"}),
        settings.dlq_topic: (1, {}),
    }


def create_topics(settings: Settings,
                  specs: dict[str, tuple[int, dict[str, str]]] | None = None,
                  timeout_s: float = 30.0) -> list[str]:
    """Create the missing topics (existing ones are left alone); returns the ones created."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    specs = topic_specs(settings) if specs is None else specs
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
                             client_id="carbonpipe-topics")
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        for name, (parts, configs) in specs.items():
            if name in existing:
                continue
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1,
                                              topic_configs=configs)])
                created.append(name)
        deadline = time.monotonic() + timeout_s
        while not set(specs) <= set(admin.list_topics()):
            if time.monotonic() > deadline:
                raise StackError(f"topics {sorted(specs)} not visible after {timeout_s:.0f}s")
            time.sleep(0.2)
    finally:
        admin.close()
    return created


# ----------------------------------------------------------------------------- stop/status
def stop_service(settings: Settings, service: str, timeout_s: float = 30.0) -> bool:
    """SIGTERM the process group we started, SIGKILL after ``timeout_s``; True if one ran."""
    p = paths(settings)
    with _locked(p, service):
        return _stop(settings, p, service, timeout_s)


def _stop(settings: Settings, p: Paths, service: str, timeout_s: float) -> bool:
    pid = running_pid(settings, service)
    rec = _read_pid(p, service)
    if pid is None or rec is None:
        return False
    started = rec[1]
    t0 = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    while _alive(pid, started) and time.monotonic() - t0 < timeout_s:
        time.sleep(0.2)
    if _alive(pid, started):
        _say(f"{service}: no exit after {timeout_s:.0f}s of SIGTERM, sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        time.sleep(0.5)
    p.pid_file(service).unlink(missing_ok=True)
    _say(f"{service}: stopped pid {pid} in {time.monotonic() - t0:.1f}s")
    return True


def stop_kafka(settings: Settings) -> bool:
    return stop_service(settings, "kafka")


def stop_mongo(settings: Settings) -> bool:
    return stop_service(settings, "mongo")


def stop_all(settings: Settings, services: Iterable[str] = SERVICES) -> None:
    for service in services:
        stop_service(settings, service)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    pid: int | None  # ours; None when not running or run by someone else
    healthy: bool
    log: Path | None

    def line(self) -> str:
        state = "up" if self.healthy else ("starting/unhealthy" if self.pid else "down")
        who = f"pid {self.pid}" if self.pid else ("external" if self.healthy else "-")
        log = f"  log {self.log}" if self.log else ""
        return f"{self.name:6} {state:18} {self.address:32} {who}{log}"


def status(settings: Settings) -> dict[str, ServiceStatus]:
    p = paths(settings)
    host, port, _ = kafka_addresses(settings)
    embedded = settings.uses_embedded_mongo
    return {
        "kafka": ServiceStatus("kafka", f"{host}:{port}", running_pid(settings, "kafka"),
                               kafka_healthy(settings), p.log_file("kafka")),
        "mongo": ServiceStatus(
            "mongo",
            f"ferretdb 127.0.0.1:{settings.ferretdb_port}" if embedded
            else _redact(settings.mongo_uri),
            running_pid(settings, "mongo") if embedded else None,
            mongo_healthy(settings), p.log_file("mongo") if embedded else None),
    }


def _redact(uri: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", uri)


# ----------------------------------------------------------------------------- CLI
def _services_arg(value: str) -> list[str]:
    names = [s.strip() for s in value.split(",") if s.strip()]
    bad = [s for s in names if s not in SERVICES]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown service(s) {bad}; pick from {SERVICES}")
    return names


def _cmd_up(args: argparse.Namespace) -> int:
    settings = get_settings()
    services: list[str] = args.services
    try:
        # A service that already answers (e.g. docker compose's Kafka) needs no local build.
        parts = [s for s in services if not healthy(settings, s)]
        ensure_built(settings, parts if args.no_spark_jars else [*parts, "spark"])
        if "kafka" in services:
            start_kafka(settings, timeout_s=args.timeout)
            created = create_topics(settings)
            if created:
                _say(f"kafka: created topics {', '.join(created)}")
        if "mongo" in services:
            start_mongo(settings, timeout_s=args.timeout)
    except StackError as exc:
        print(f"carbonpipe up: {exc}", file=sys.stderr)
        return 1
    for st in status(settings).values():
        if st.name in services:
            print(st.line())
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    settings = get_settings()
    for service in args.services:
        if not stop_service(settings, service):
            _say(f"{service}: not running (nothing started by carbonpipe)")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    sts = status(get_settings())
    for st in sts.values():
        print(st.line())
    return 0 if all(s.healthy for s in sts.values()) else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``up``, ``down`` and ``status`` to the ``carbonpipe`` command."""
    up = sub.add_parser("up", help="build if needed and start Kafka + the embedded MongoDB")
    up.add_argument("--services", type=_services_arg, default=list(SERVICES),
                    help="comma-separated subset of kafka,mongo (default: both)")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait per service")
    up.add_argument("--no-spark-jars", action="store_true",
                    help="skip resolving Spark's Kafka connector jars")
    up.set_defaults(func=_cmd_up)

    down = sub.add_parser("down", help="stop the services `carbonpipe up` started")
    down.add_argument("--services", type=_services_arg, default=list(SERVICES))
    down.set_defaults(func=_cmd_down)

    st = sub.add_parser("status", help="show whether Kafka and MongoDB answer (exit 1 if not)")
    st.set_defaults(func=_cmd_status)
