"""docker-compose.yml and the Dockerfile describe the same stack as `carbonpipe up`.

No Docker engine on the build machine, so this parses the files and checks the wiring that
would otherwise only fail at `docker compose up`: images, ports, env, volumes, start order.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import REPO_ROOT

yaml = pytest.importorskip("yaml")

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
APP_SERVICES = {"feeder": "feed", "stream": "stream", "dashboard": "dashboard"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the "KEY=value" list form
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_services_present(compose: dict[str, Any]) -> None:
    assert {"kafka", "mongo", "topics", *APP_SERVICES} <= set(compose["services"])


def test_kafka_is_single_node_kraft_4_1(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:4\.1(\.\d+)?", kafka["image"])
    env = _env(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    # Kafka's Uuid: 16 bytes as url-safe base64 without padding = 22 characters
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])
    assert any(str(v).endswith(":/var/lib/kafka/data") for v in kafka["volumes"])
    assert "healthcheck" in kafka


def test_mongo_is_real_mongodb_7(compose: dict[str, Any]) -> None:
    mongo = compose["services"]["mongo"]
    assert mongo["image"].startswith("mongo:7")
    assert "27017:27017" in mongo["ports"]
    assert any(str(v).endswith(":/data/db") for v in mongo["volumes"])
    assert "healthcheck" in mongo


@pytest.mark.parametrize(("name", "command"), sorted(APP_SERVICES.items()))
def test_app_services(compose: dict[str, Any], name: str, command: str) -> None:
    svc = compose["services"][name]
    assert svc["build"] == "." and svc["image"].startswith("carbonpipe")
    assert svc["command"][0] == command
    env = _env(svc)
    assert env["CARBONPIPE_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["MONGO_URI"] == "mongodb://mongo:27017"
    assert env["CARBONPIPE_HOME"] == "/data"
    assert "carbonpipe-state:/data" in svc["volumes"]
    deps = svc["depends_on"]
    assert all(dep in compose["services"] for dep in deps)
    if name != "dashboard":
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["topics"]["condition"] == "service_completed_successfully"
    if name in ("stream", "dashboard"):
        assert deps["mongo"]["condition"] == "service_healthy"


def test_dashboard_port_and_named_volumes(compose: dict[str, Any]) -> None:
    assert "8501:8501" in compose["services"]["dashboard"]["ports"]
    declared = set(compose["volumes"])
    for svc in compose["services"].values():
        for vol in svc.get("volumes", []):
            source = str(vol).split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"volume {source} not declared"


def test_topics_job_creates_topics_once(compose: dict[str, Any]) -> None:
    topics = compose["services"]["topics"]
    assert topics["command"][:3] == ["up", "--services", "kafka"]
    assert topics["restart"] == "no"


def test_dockerfile_builds_the_app_image() -> None:
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    assert froms[-1].startswith("python:3.11-slim")
    assert "openjdk-17-jre-headless" in text
    assert re.search(r"pip install -e '\.\[spark,dashboard\]'", text)
    assert "infra/spark/pom.xml" in text  # connector jars baked in, not fetched at run time
    assert "EXPOSE 8501" in text
    assert re.search(r'ENTRYPOINT \["carbonpipe"\]', text)
    assert Path(REPO_ROOT / ".dockerignore").read_text().count(".carbonpipe") == 1
