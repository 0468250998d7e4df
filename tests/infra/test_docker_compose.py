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
SECURE = REPO_ROOT / "docker-compose.secure.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
# The Kafka client settings the secure override sets (implemented with the Kafka clients).
KAFKA_SECURITY_SETTINGS = {
    "CARBONPIPE_KAFKA_SECURITY_PROTOCOL", "CARBONPIPE_KAFKA_SASL_MECHANISM",
    "CARBONPIPE_KAFKA_SASL_USERNAME", "CARBONPIPE_KAFKA_SASL_PASSWORD",
    "CARBONPIPE_KAFKA_SSL_CAFILE",
}  # fmt: skip


def env_example() -> dict[str, str]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    return dict(ln.split("=", 1) for ln in lines if ln.strip() and not ln.startswith("#"))


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:?message}`` and ``${VAR:-default}`` against ``env``."""

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":-":
            return arg
        raise AssertionError(f"${{{name}}} is not set by .env.example ({arg})")

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:[?-])([^}]*))?\}", sub, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def secure() -> dict[str, Any]:
    doc = yaml.safe_load(SECURE.read_text())
    assert isinstance(doc, dict)
    return doc


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the "KEY=value" list form
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _carbonpipe_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the ``carbonpipe`` entry point (the Spark daemons of the
    ``cluster`` profile run the same image with ``spark-class`` instead)."""
    return {n: s for n, s in compose["services"].items()
            if str(s.get("build")) == "." and "entrypoint" not in s}  # fmt: skip


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
        env = {k: interpolate(v, env_example()) for k, v in _env(svc).items()
               if k.startswith("CARBONPIPE_") or k in known}  # fmt: skip
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


# ------------------------------------------------------------------ exposure (issue 16)
def _published(svc: dict[str, Any]) -> list[str]:
    return [str(p) for p in svc.get("ports") or []]


def test_only_the_dashboard_is_published_and_only_on_loopback(compose: dict[str, Any]) -> None:
    published = {n: _published(s) for n, s in compose["services"].items() if _published(s)}
    port = Settings.model_fields["dashboard_port"].default
    assert published == {"dashboard": [f"127.0.0.1:{port}:{port}"]}
    assert "expose" not in compose["services"]["mongo"]
    dash = _env(compose["services"]["dashboard"])  # inside its container, for the mapping
    assert dash["CARBONPIPE_DASHBOARD_ADDRESS"] == "0.0.0.0"


def test_kafka_has_no_listener_for_the_host(compose: dict[str, Any]) -> None:
    env = _env(compose["services"]["kafka"])
    assert env["KAFKA_LISTENERS"] == "PLAINTEXT://:9092,CONTROLLER://localhost:9093"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@localhost:9093"


def test_mongodb_requires_a_password_from_the_env_file(compose: dict[str, Any]) -> None:
    mongo = _env(compose["services"]["mongo"])
    for key in ("MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD",
                "MONGO_APP_USERNAME", "MONGO_APP_PASSWORD"):  # fmt: skip
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", mongo[key]), f"{key} must come from .env"
    example = env_example()
    uri = interpolate(_env(compose["services"]["stream"])["MONGO_URI"], example)
    user, password = example["MONGO_APP_USERNAME"], example["MONGO_APP_PASSWORD"]
    assert uri == f"mongodb://{user}:{password}@mongo:27017/carbonpipe?authSource=admin"
    init = [v for v in compose["services"]["mongo"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init and (REPO_ROOT / init[0].split(":")[0]).is_file()
    ignored = (REPO_ROOT / ".gitignore").read_text().split()
    assert ".env" in ignored and "secrets/" in ignored
    docker_ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert ".env" in docker_ignored and "secrets" in docker_ignored


def test_secure_override_turns_on_sasl_ssl_for_every_kafka_client(
    compose: dict[str, Any], secure: dict[str, Any]
) -> None:
    kafka = _env(secure["services"]["kafka"])
    protocols = dict(p.split(":") for p in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    for listener in kafka["KAFKA_LISTENERS"].split(","):
        name, _, address = listener.partition("://")
        # anything not on the container's loopback speaks SASL_SSL
        assert protocols[name] == "SASL_SSL" or address.startswith("localhost:"), listener
    assert _published(secure["services"]["kafka"]) == ["127.0.0.1:29092:29092"]
    known = {f"CARBONPIPE_{f.upper()}" for f in Settings.model_fields} | KAFKA_SECURITY_SETTINGS
    for name in _carbonpipe_services(compose):
        if name == "dashboard":  # reads MongoDB only: no Kafka credentials at all
            assert name not in secure["services"]
            continue
        if compose["services"][name].get("profiles"):  # the `cluster` profile: PLAINTEXT
            continue
        env = _env(secure["services"][name])
        assert set(env) <= known
        assert env["CARBONPIPE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env["CARBONPIPE_KAFKA_SASL_PASSWORD"].startswith("${KAFKA_CLIENT_PASSWORD:?")
        ca = env["CARBONPIPE_KAFKA_SSL_CAFILE"]
        assert any(str(v).endswith(f":{ca}:ro") for v in secure["services"][name]["volumes"])


def test_make_secrets_builds_a_keystore_kafka_can_read(tmp_path: Path) -> None:
    """The script behind the secure override, run for real (openssl; keytool reads it back)."""
    import shutil
    import subprocess

    if not (shutil.which("openssl") and shutil.which("keytool")):
        pytest.skip("needs openssl and keytool (a JDK)")
    (tmp_path / ".env").write_text("KAFKA_CLIENT_PASSWORD=client-pw-1\n"
                                   "KAFKA_KEYSTORE_PASSWORD=keystore-pw-1\n")  # fmt: skip
    subprocess.run([str(REPO_ROOT / "infra/compose/make-secrets.sh"), str(tmp_path)], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    kafka = tmp_path / "secrets" / "kafka"
    assert {p.name for p in kafka.iterdir()} == {
        "ca.pem", "kafka.keystore.p12", "keystore_creds", "kafka_server_jaas.conf"}
    listing = subprocess.run(
        ["keytool", "-list", "-v", "-storetype", "PKCS12", "-keystore",
         str(kafka / "kafka.keystore.p12"), "-storepass", "keystore-pw-1"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    assert "PrivateKeyEntry" in listing and "DNSName: kafka" in listing
    assert 'user_carbonpipe="client-pw-1"' in (kafka / "kafka_server_jaas.conf").read_text()
    assert not (kafka / "ca.key").exists()  # the CA key is never mounted


# ------------------------------------------------------------------ profile `cluster` (issue 15)
def _cluster_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if "cluster" in s.get("profiles", [])}


def test_cluster_profile_is_optional(compose: dict[str, Any]) -> None:
    extra = _cluster_services(compose)
    assert {"kafka-c1", "kafka-c2", "kafka-c3", "spark-master", "spark-worker",
            "stream-cluster"} <= set(extra)  # fmt: skip
    for name, svc in compose["services"].items():
        if name not in extra:  # a plain `docker compose up` never needs a profile service
            assert not set(svc.get("depends_on") or {}) & set(extra), name


def test_cluster_brokers_form_one_replicated_quorum(compose: dict[str, Any]) -> None:
    from carbonpipe.services.cluster import REPLICATION

    brokers = {n: _env(s) for n, s in _cluster_services(compose).items()
               if s.get("image", "").startswith("apache/kafka")}  # fmt: skip
    assert len(brokers) == 3
    assert len({e["CLUSTER_ID"] for e in brokers.values()}) == 1
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", next(iter(brokers.values()))["CLUSTER_ID"])
    voters = {e["KAFKA_CONTROLLER_QUORUM_VOTERS"] for e in brokers.values()}
    assert len(voters) == 1
    want = {f"{e['KAFKA_NODE_ID']}@{n}:9093" for n, e in brokers.items()}
    assert set(voters.pop().split(",")) == want  # every broker votes, under its own id
    for name, e in brokers.items():
        assert e["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        rf, isr = REPLICATION
        assert (int(e["KAFKA_DEFAULT_REPLICATION_FACTOR"]), int(e["KAFKA_MIN_INSYNC_REPLICAS"])) \
            == (rf, isr)
    job = _env(compose["services"]["stream-cluster"])
    assert set(job["CARBONPIPE_KAFKA_BOOTSTRAP_SERVERS"].split(",")) == {
        f"{n}:9092" for n in brokers}
    assert (int(job["CARBONPIPE_KAFKA_REPLICATION_FACTOR"]),
            int(job["CARBONPIPE_KAFKA_MIN_INSYNC_REPLICAS"])) == REPLICATION  # fmt: skip


def test_cluster_spark_daemons_run_pysparks_own_classes(compose: dict[str, Any]) -> None:
    import zipfile

    from carbonpipe.services.cluster import spark_home

    services = _cluster_services(compose)
    (core,) = (spark_home() / "jars").glob("spark-core_*.jar")
    classes = set(zipfile.ZipFile(core).namelist())
    master, worker = services["spark-master"], services["spark-worker"]
    for svc in (master, worker):
        assert svc["entrypoint"] == ["spark-class"]
        assert (spark_home() / "bin" / "spark-class").is_file()
        assert svc["command"][0].replace(".", "/") + ".class" in classes
    host = master["command"][master["command"].index("--host") + 1]
    port = master["command"][master["command"].index("--port") + 1]
    url = f"spark://{host}:{port}"
    assert worker["command"][-1] == url
    assert _env(services["stream-cluster"])["CARBONPIPE_SPARK_MASTER"] == url
    assert worker["deploy"]["replicas"] == 2
