"""docker-compose.yml and the Dockerfile agree with the code they run.

No Docker engine on the build machine, so these check what would otherwise only fail at
``docker compose up``, against the code rather than against a copy of the file: every service
command is a command the ``carbonpipe`` entry point accepts, the apps run what ``carbonpipe apps``
runs, every ``CARBONPIPE_*`` variable is a real setting that loads, references between services
and volumes resolve, and the image installs extras that exist and exposes the dashboard's port.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import tomllib

from carbonpipe.cli import build_parser
from carbonpipe.core.config import REPO_ROOT, Settings, load_settings
from carbonpipe.services.apps import APPS, app_command

yaml = pytest.importorskip("yaml")

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"


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


def _carbonpipe_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if str(s.get("build")) == "."}


def _command_of(argv: list[str]) -> Any:
    """The function the ``carbonpipe`` entry point would run for ``argv`` (or a usage error)."""
    parser = build_parser(argv[0])
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        raise AssertionError(f"`carbonpipe {' '.join(argv)}` is not a valid command") from exc
    return args.func


def test_every_app_runs_what_carbonpipe_apps_runs(compose: dict[str, Any]) -> None:
    services = _carbonpipe_services(compose)
    settings = load_settings()
    for app in APPS:
        assert app in services, f"compose has no service for the {app} app"
        ours = app_command(app, settings, "GB")[3:]  # drop "python -m carbonpipe.cli"
        assert _command_of(services[app]["command"]) is _command_of(ours)


def test_every_service_command_is_a_carbonpipe_command(compose: dict[str, Any]) -> None:
    for name, svc in _carbonpipe_services(compose).items():
        assert callable(_command_of(list(svc["command"]))), name


def test_every_setting_in_the_environment_is_one_the_code_reads(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = {f"CARBONPIPE_{f.upper()}" for f in Settings.model_fields} | {"MONGO_URI"}
    for name, svc in _carbonpipe_services(compose).items():
        env = {k: v for k, v in _env(svc).items() if k.startswith("CARBONPIPE_") or k in known}
        assert set(env) <= known, f"{name}: unknown settings {sorted(set(env) - known)}"
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        s = load_settings()  # range checks pass
        assert s.kafka_bootstrap_servers == env["CARBONPIPE_KAFKA_BOOTSTRAP_SERVERS"]
        assert not s.uses_embedded_mongo and s.mongo_uri == env["MONGO_URI"]


def test_references_resolve(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared = set(compose.get("volumes") or {})
    for name, svc in services.items():
        for dep in svc.get("depends_on") or {}:
            assert dep in services, f"{name} depends on unknown service {dep}"
        for vol in svc.get("volumes", []):
            source = str(vol).split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} not declared"
    for name, svc in _carbonpipe_services(compose).items():
        deps = svc.get("depends_on") or {}
        if "kafka" in deps:  # Kafka answers before anything is sent to it
            assert deps["kafka"]["condition"] == "service_healthy", name


def test_kafka_cluster_id_is_a_kafka_uuid(compose: dict[str, Any]) -> None:
    env = _env(compose["services"]["kafka"])
    # Kafka's Uuid: 16 bytes as url-safe base64 without padding = 22 characters
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])


def test_dockerfile_installs_real_extras_and_exposes_the_dashboard(compose: dict[str, Any]) -> None:
    text = DOCKERFILE.read_text()
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = re.search(r"pip install -e '\.\[([a-z,]+)\]'", text)
    assert extras, "the image installs the project with its extras"
    assert set(extras.group(1).split(",")) <= set(project["optional-dependencies"])
    entry = re.search(r'ENTRYPOINT \["([^"]+)"\]', text)
    assert entry and entry.group(1) in project["scripts"]
    for src in re.findall(r"^COPY (?!--from)(\S+) ", text, flags=re.M):
        assert (REPO_ROOT / src).exists(), f"COPY {src}: no such path"
    port = str(Settings.model_fields["dashboard_port"].default)
    assert re.search(rf"^EXPOSE {port}$", text, flags=re.M)
    published = [str(p).rsplit(":", 1)[-1] for p in compose["services"]["dashboard"]["ports"]]
    assert port in published
    assert ".carbonpipe" in Path(REPO_ROOT / ".dockerignore").read_text().split()
