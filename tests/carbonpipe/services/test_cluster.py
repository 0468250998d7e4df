"""The local cluster's declarations (``carbonpipe.services.cluster``), and S3A on the job's
own Hadoop client. The cluster itself runs in ``tests/cluster`` (``make test-cluster``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from carbonpipe.core.config import load_settings
from carbonpipe.services import build, cluster


def test_env_exports_load_as_the_cluster_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = load_settings(home=tmp_path)
    exports = dict(re.fullmatch(r"export (\w+)=(.*)", ln).groups()  # type: ignore[union-attr]
                   for ln in cluster.env_lines(base))  # fmt: skip
    for k, v in exports.items():
        monkeypatch.setenv(k, v)
    loaded, want = load_settings(home=tmp_path), cluster.cluster_settings(base)
    for key in cluster.ENV_KEYS:
        assert getattr(loaded, key) == getattr(want, key), key
    assert loaded.kafka_bootstrap_servers == "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
    assert loaded.cold_store_uri.startswith("hdfs://127.0.0.1:19020/")
    assert (loaded.kafka_replication_factor, loaded.kafka_min_insync_replicas) == (3, 2)
    assert Path(exports["SPARK_HOME"], "bin", "spark-submit").is_file()


def test_ports_stay_clear_of_the_single_stack(tmp_path: Path) -> None:
    base = load_settings(home=tmp_path)
    c = cluster.cluster(base)
    ports = [p for svc in c.services for _, p in svc.ports(c.state)]
    assert len(ports) == len(set(ports))  # no two processes want the same port
    single = {9092, 9093, base.ferretdb_port, base.postgres_port, base.dashboard_port}
    assert not single & set(ports)


def test_brokers_form_one_quorum_of_three(tmp_path: Path) -> None:
    base = load_settings(home=tmp_path)
    props = [dict(ln.split("=", 1) for ln in cluster._kafka_properties(base, n, tmp_path)
                  .splitlines() if ln and not ln.startswith("#"))
             for n in (1, 2, 3)]  # fmt: skip
    assert {p["controller.quorum.voters"] for p in props} == {
        "1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194"}
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    assert {p["min.insync.replicas"] for p in props} == {"2"}
    assert {p["offsets.topic.replication.factor"] for p in props} == {"3"}


def test_submit_passes_the_wheel_and_the_connector(tmp_path: Path) -> None:
    s = cluster.cluster_settings(load_settings(home=tmp_path))
    jars = tmp_path / "jars" / "spark"
    jars.mkdir(parents=True)
    (jars / "spark-sql-kafka-0-10_2.13-4.1.1.jar").touch()
    cmd = cluster.submit_command(s, tmp_path / "c.whl", tmp_path / "stream.py")
    assert cmd[cmd.index("--master") + 1] == s.spark_master == "spark://127.0.0.1:17077"
    assert cmd[cmd.index("--py-files") + 1] == str(tmp_path / "c.whl")
    assert "spark-sql-kafka" in cmd[cmd.index("--jars") + 1]
    assert cmd[cmd.index("--total-executor-cores") + 1] == "2"


# ------------------------------------------------------------------ S3A (needs the jars)
BAD_ENDPOINT = [
    "-D", "fs.s3a.endpoint=http://127.0.0.1:9", "-D", "fs.s3a.endpoint.region=us-east-1",
    "-D", "fs.s3a.path.style.access=true", "-D", "fs.s3a.access.key=AKIAEXAMPLE",
    "-D", "fs.s3a.secret.key=example", "-D", "fs.s3a.retry.limit=0",
    "-D", "fs.s3a.attempts.maximum=0", "-D", "fs.s3a.connection.establish.timeout=2s",
]  # fmt: skip


@pytest.mark.cluster
def test_s3a_loads_and_a_bad_endpoint_says_so() -> None:
    """No S3 is reachable here: with the resolved jars the S3A file system loads and names
    the endpoint it could not reach; without them Hadoop cannot find the class it maps the
    scheme to."""
    settings = load_settings()
    build.ensure_built(settings, ("s3a",))
    uri = "s3a://carbonpipe-test/cold"
    res = cluster.fs_shell(settings, [*BAD_ENDPOINT, "-ls", uri], s3a=True)
    assert res.returncode != 0
    assert "Connect to 127.0.0.1:9" in res.stderr and "Connection refused" in res.stderr
    assert "ClassNotFound" not in res.stderr
    bare = cluster.fs_shell(settings, [*BAD_ENDPOINT, "-ls", uri], s3a=False)
    assert bare.returncode != 0
    assert "ClassNotFoundException: Class org.apache.hadoop.fs.s3a.S3AFileSystem" in bare.stderr
