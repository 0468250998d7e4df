"""Every process the project starts listens on loopback only.

The listening sockets are read from the processes themselves (psutil, their whole process
trees: Spark's JVM is a child of the job): Kafka (broker and controller), the embedded
FerretDB, the dashboard, the streaming job (Spark's driver and block manager) and the feeder,
each started the way ``carbonpipe up`` / ``carbonpipe apps up`` start them.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from carbonpipe.core.config import REPO_ROOT, Settings
from carbonpipe.services import stack
from carbonpipe.services.apps import app_command, wait_http
from tests.dashboard.test_dashboard_browser import _free_port

pytestmark = pytest.mark.integration


def listeners(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket listening in ``pid`` and its descendants."""
    out = []
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    for proc in procs:
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        out += [(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return out


def is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def service_pid(settings: Settings, name: str, port: int) -> int:
    """Our pid file's process, else whoever listens on the service's port (a stack started
    from another home)."""
    pid = stack.running_pid(settings, name)
    if pid:
        return pid
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and getattr(c.laddr, "port", None) == port and c.pid:
            return c.pid
    pytest.fail(f"{name}: no process found listening on port {port}")


@pytest.fixture()
def apps(
    unique_topics: Settings, tmp_path: Path
) -> Iterator[tuple[dict[str, subprocess.Popen[bytes]], int]]:
    """The dashboard, the streaming job and the feeder, as ``carbonpipe apps up`` runs them."""
    s = unique_topics
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONPIPE_DASHBOARD")}
    env.update({
        "CARBONPIPE_METRICS_TOPIC": s.metrics_topic,
        "CARBONPIPE_INTENSITY_TOPIC": s.intensity_topic,
        "CARBONPIPE_DLQ_TOPIC": s.dlq_topic, "CARBONPIPE_MONGO_DB": s.mongo_db,
        "CARBONPIPE_MONGO_URI": s.mongo_uri, "CARBONPIPE_KAFKA_BOOTSTRAP_SERVERS":
        s.kafka_bootstrap_servers, "CARBONPIPE_SPARK_JARS_DIR": str(s.spark_jars_dir),
        "CARBONPIPE_CHECKPOINT_URI": str(tmp_path / "checkpoints"),
        "CARBONPIPE_COLD_STORE_URI": str(tmp_path / "cold"),
        "CARBONPIPE_DASHBOARD_PORT": str(_free_port()),
    })  # fmt: skip
    settings = s.model_copy(update={"dashboard_port": int(env["CARBONPIPE_DASHBOARD_PORT"])})
    procs = {}
    try:
        for name in ("feeder", "stream", "dashboard"):
            cmd = app_command(name, settings, "US-CAL-CISO")
            procs[name] = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, start_new_session=True)
        yield procs, settings.dashboard_port
    finally:
        for proc in procs.values():  # our own process groups (start_new_session), only
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(10)


def test_every_started_process_listens_on_loopback_only(
    unique_topics: Settings, apps: tuple[dict[str, subprocess.Popen[bytes]], int]
) -> None:
    s = unique_topics
    procs, dash_port = apps
    assert wait_http(f"http://127.0.0.1:{dash_port}/_stcore/health", 120), "dashboard not up"

    # The job's JVM: Py4J gateway, then (session built) driver RPC and block manager
    deadline = time.monotonic() + 180
    while len(listeners(procs["stream"].pid)) < 3 and time.monotonic() < deadline:
        assert procs["stream"].poll() is None, "the streaming job exited"
        time.sleep(2)

    broker_port = int(s.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)[1])
    found = {
        "kafka": listeners(service_pid(s, "kafka", broker_port)),
        "mongo": listeners(service_pid(s, "mongo", s.ferretdb_port)),
        "dashboard": listeners(procs["dashboard"].pid),
        "stream": listeners(procs["stream"].pid),
        "feeder": listeners(procs["feeder"].pid),
    }
    print({k: sorted(v) for k, v in found.items()})
    assert {broker_port, broker_port + 1} <= {p for _, p in found["kafka"]}  # + controller
    assert (("127.0.0.1", s.ferretdb_port)) in found["mongo"]
    assert ("127.0.0.1", dash_port) in found["dashboard"]
    assert len(found["stream"]) >= 3, "Py4J, driver RPC and block manager of the job's JVM"
    exposed = {name: [a for a in socks if not is_loopback(a[0])] for name, socks in found.items()}
    assert exposed == {name: [] for name in found}, exposed
