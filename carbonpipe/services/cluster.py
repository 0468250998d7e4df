"""The local multi-process cluster: three KRaft brokers, Spark standalone, HDFS, on loopback.

``carbonpipe cluster up`` (``make cluster-up``) starts, from the same parts as the single
stack: three Kafka brokers (each broker + controller, a three-voter quorum), a Spark master and
``cluster_workers`` workers from pyspark's own distribution (``spark-class``), and a real
NameNode + DataNode (Hadoop's mini-cluster, ``infra/hdfs/pom.xml``, at the Hadoop version of
pyspark's client). The pipeline's topics get ``kafka_replication_factor`` copies. Everything
it keeps (configs, data, logs, pid files) lives in ``<home>/cluster/``; the jars are the home's.
The job needs nothing but settings to run there (``env``): the same code as ``local[2]``.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from carbonpipe.core.config import Settings
from carbonpipe.core.layout import Layout
from carbonpipe.services import build
from carbonpipe.services.process import StackError
from carbonpipe.services.service import Service, home_layout, port_open, say

HOST = "127.0.0.1"
BROKERS = 3
CONTROLLER_OFFSET = 100  # controller i listens on broker i's port + 100
KAFKA_HEAP = "-Xmx256m -Xms64m"
DAEMON_MEMORY = "256m"  # Spark master / worker JVMs (they only schedule; executors do the work)
WORKER_MEMORY = "1g"  # what each worker offers its executors
HDFS_HEAP = "-Xmx384m"
REPLICATION = (3, 2)  # (replication factor, min.insync.replicas) of the cluster's topics


def spark_home() -> Path:
    """pyspark's own Spark distribution (``bin/spark-class``, ``bin/spark-submit``, ``jars/``)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def cluster_settings(settings: Settings) -> Settings:
    """The settings a job on this cluster runs with: same code, other addresses and stores."""
    kp, hp = settings.cluster_kafka_port, settings.cluster_hdfs_port
    rf, isr = REPLICATION
    return settings.model_copy(update={
        "kafka_bootstrap_servers": ",".join(f"{HOST}:{kp + i}" for i in range(BROKERS)),
        "spark_master": f"spark://{HOST}:{settings.cluster_spark_port}",
        "cold_store_uri": f"hdfs://{HOST}:{hp}/carbonpipe/cold",
        "checkpoint_uri": f"hdfs://{HOST}:{hp}/carbonpipe/checkpoints",
        "kafka_replication_factor": rf, "kafka_min_insync_replicas": isr,
    })  # fmt: skip


ENV_KEYS = ("kafka_bootstrap_servers", "spark_master", "cold_store_uri", "checkpoint_uri",
            "kafka_replication_factor", "kafka_min_insync_replicas")  # fmt: skip


def env_lines(settings: Settings) -> list[str]:
    """``export`` lines that point carbonpipe (job, CLI, collectors) at the cluster."""
    c = cluster_settings(settings)
    lines = [f"export CARBONPIPE_{k.upper()}={getattr(c, k)}" for k in ENV_KEYS]
    return [*lines, f"export SPARK_HOME={spark_home()}", f"export SPARK_LOCAL_IP={HOST}"]


# ------------------------------------------------------------------ the processes
def _state(settings: Settings) -> Settings:
    """Settings whose home is ``<home>/cluster``: pid files, logs and data of the cluster."""
    return settings.model_copy(update={"home": home_layout(settings).home / "cluster"})


def _kafka_properties(settings: Settings, node: int, data: Path) -> str:
    kp = settings.cluster_kafka_port
    voters = ",".join(f"{i + 1}@{HOST}:{kp + i + CONTROLLER_OFFSET}" for i in range(BROKERS))
    port = kp + node - 1
    rf, isr = REPLICATION
    return "\n".join([
        "# Written by carbonpipe.services.cluster on every start; edit the code, not this file.",
        "process.roles=broker,controller",
        f"node.id={node}",
        f"controller.quorum.voters={voters}",
        f"listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{port + CONTROLLER_OFFSET}",
        f"advertised.listeners=PLAINTEXT://{HOST}:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={data}",
        "num.network.threads=2",
        "num.io.threads=2",
        f"default.replication.factor={rf}",
        f"min.insync.replicas={isr}",
        f"offsets.topic.replication.factor={rf}",
        "offsets.topic.num.partitions=4",
        f"transaction.state.log.replication.factor={rf}",
        f"transaction.state.log.min.isr={isr}",
        f"share.coordinator.state.topic.replication.factor={rf}",
        f"share.coordinator.state.topic.min.isr={isr}",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=false",
        "",
    ])


def _broker(settings: Settings, node: int, cluster_id: Callable[[], str]) -> Service:
    home = home_layout(settings)
    port = settings.cluster_kafka_port + node - 1
    name = f"kafka-{node}"

    def healthy(s: Settings) -> bool:
        if not port_open(HOST, port):
            return False
        from kafka import KafkaAdminClient

        try:
            admin = KafkaAdminClient(bootstrap_servers=f"{HOST}:{port}", request_timeout_ms=3000,
                                     client_id="carbonpipe-cluster-health")  # fmt: skip
        except Exception:
            return False
        try:
            return len(admin.describe_cluster().get("brokers", [])) >= 1
        except Exception:
            return False
        finally:
            admin.close()

    def prepare(s: Settings, lay: Layout) -> tuple[list[str], Path]:
        jars = build.kafka_jars(home)
        if not any(jars.glob(build.KAFKA_JAR)):
            raise StackError(f"kafka jars missing in {jars}: run `make setup`")
        work = lay.home / name
        data = work / "data"
        conf = work / "server.properties"
        work.mkdir(parents=True, exist_ok=True)
        conf.write_text(_kafka_properties(settings, node, data))
        java = [build.java(), *KAFKA_HEAP.split(), "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={build.INFRA / 'kafka' / 'log4j2.properties'}",
                f"-Dkafka.logs.dir={lay.logs / name}", "-cp", f"{jars}/*"]  # fmt: skip
        if not (data / "meta.properties").exists():
            fmt = [*java, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id()}",
                   "-c", str(conf)]  # fmt: skip
            res = subprocess.run(fmt, capture_output=True, text=True, cwd=work)
            if res.returncode != 0:
                raise StackError(f"{name}: storage format failed: {res.stdout}{res.stderr}")
        return [*java, "kafka.Kafka", str(conf)], work

    return Service(
        name=name, program=f"Kafka broker {node}", healthy=healthy,
        address=lambda s: f"{HOST}:{port}",
        ports=lambda s: [(HOST, port), (HOST, port + CONTROLLER_OFFSET)],
        port_setting="CARBONPIPE_CLUSTER_KAFKA_PORT",
        log=lambda lay: lay.logs / name / "kafka-server.log",
        output=lambda lay: lay.logs / f"{name}.out", prepare=prepare,
    )  # fmt: skip


def _http_json(url: str) -> object | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:  # loopback http only
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def _master_ui(settings: Settings) -> str:
    return f"http://{HOST}:{settings.cluster_spark_port + 1}"


def alive_workers(settings: Settings) -> list[str]:
    """The web UI addresses of the workers the master counts as ALIVE."""
    state = _http_json(_master_ui(settings) + "/json/")
    workers = state.get("workers", []) if isinstance(state, dict) else []
    return [str(w.get("webuiaddress")) for w in workers if w.get("state") == "ALIVE"]


def _spark_env() -> list[str]:
    """``env`` arguments of the master and workers: pyspark's distribution, loopback only."""
    return [f"SPARK_HOME={spark_home()}", f"SPARK_LOCAL_IP={HOST}",
            f"SPARK_DAEMON_MEMORY={DAEMON_MEMORY}"]


def _spark(settings: Settings, worker: int) -> Service:
    """The master (``worker`` 0) or worker ``worker``, run by pyspark's ``spark-class``."""
    sp = settings.cluster_spark_port
    ui = sp + 1 + worker
    name = f"spark-worker-{worker}" if worker else "spark-master"
    master = f"spark://{HOST}:{sp}"

    def healthy(s: Settings) -> bool:
        if not worker:
            return _http_json(_master_ui(settings) + "/json/") is not None
        return f"http://{HOST}:{ui}" in alive_workers(settings)

    def prepare(s: Settings, lay: Layout) -> tuple[list[str], Path]:
        work = lay.home / name
        work.mkdir(parents=True, exist_ok=True)
        cls = str(spark_home() / "bin" / "spark-class")
        if not worker:
            args = ["org.apache.spark.deploy.master.Master", "--host", HOST, "--port", str(sp),
                    "--webui-port", str(ui)]  # fmt: skip
        else:
            args = ["org.apache.spark.deploy.worker.Worker", "--host", HOST,
                    "--cores", str(settings.cluster_worker_cores), "--memory", WORKER_MEMORY,
                    "--work-dir", str(work / "work"), "--webui-port", str(ui), master]  # fmt: skip
        return ["env", *_spark_env(), cls, *args], work

    return Service(
        name=name, program="Spark worker" if worker else "Spark master", healthy=healthy,
        address=lambda s: master if not worker else f"http://{HOST}:{ui}",
        ports=lambda s: [(HOST, ui), *([] if worker else [(HOST, sp)])],
        port_setting="CARBONPIPE_CLUSTER_SPARK_PORT",
        log=lambda lay: lay.logs / f"{name}.out", output=lambda lay: lay.logs / f"{name}.out",
        prepare=prepare,
    )  # fmt: skip


def _hdfs(settings: Settings) -> Service:
    """NameNode + one DataNode: ``org.apache.hadoop.test.MiniDFSClusterManager``, the
    mini-cluster's own command line, formatted on the first start only."""
    home = home_layout(settings)
    nn, http = settings.cluster_hdfs_port, settings.cluster_hdfs_port + 1

    def healthy(s: Settings) -> bool:
        state = _http_json(f"http://{HOST}:{http}/jmx?qry=Hadoop:service=NameNode,"
                           "name=FSNamesystemState")  # fmt: skip
        beans = state.get("beans", []) if isinstance(state, dict) else []
        return any(b.get("NumLiveDataNodes", 0) >= 1 for b in beans)

    def prepare(s: Settings, lay: Layout) -> tuple[list[str], Path]:
        jars = build.hdfs_jars(home)
        if not any(jars.glob(build.HDFS_JAR)):
            raise StackError(f"HDFS mini-cluster jars missing in {jars}: run `make cluster-up`")
        work = lay.home / "hdfs"
        fresh = not (work / "data").exists()
        work.mkdir(parents=True, exist_ok=True)
        return [build.java(), *HDFS_HEAP.split(), "-cp", f"{jars}/*",
                "org.apache.hadoop.test.MiniDFSClusterManager", *(["-format"] if fresh else []),
                "-nnport", str(nn), "-httpport", str(http), "-datanodes", "1",
                "-D", f"hdfs.minidfs.basedir={work}",
                "-writeConfig", str(work / "hdfs-site.xml")], work  # fmt: skip

    return Service(
        name="hdfs", program="HDFS NameNode + DataNode", healthy=healthy,
        address=lambda s: f"hdfs://{HOST}:{nn}", ports=lambda s: [(HOST, nn), (HOST, http)],
        port_setting="CARBONPIPE_CLUSTER_HDFS_PORT",
        log=lambda lay: lay.logs / "hdfs.out", output=lambda lay: lay.logs / "hdfs.out",
        prepare=prepare,
    )  # fmt: skip


@dataclass(frozen=True)
class Cluster:
    """The cluster's services in start order (stopped in reverse) and their settings."""

    settings: Settings  # the user's: its home holds the jars and ``cluster/``
    services: tuple[Service, ...]

    @property
    def state(self) -> Settings:
        return _state(self.settings)

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)


def cluster(settings: Settings) -> Cluster:
    lay = home_layout(settings)
    id_file = lay.home / "cluster" / "kafka-cluster-id"

    def cluster_id() -> str:  # one id for the three brokers, kept with their data
        from carbonpipe.services.kafka import cluster_id as new_id

        if not id_file.exists():
            id_file.parent.mkdir(parents=True, exist_ok=True)
            id_file.write_text(new_id())
        return id_file.read_text().strip()

    brokers = [_broker(settings, i + 1, cluster_id) for i in range(BROKERS)]
    spark = [_spark(settings, i) for i in range(settings.cluster_workers + 1)]
    return Cluster(settings, (*brokers, _hdfs(settings), *spark))


def up(settings: Settings, timeout_s: float = 180.0) -> Cluster:
    """Build what is missing, start every process and wait until each answers (the brokers
    together: their quorum needs two; the master before its workers), then create the
    pipeline's replicated topics."""
    from carbonpipe.services.topics import create_topics

    build.ensure_built(settings, ("kafka", "spark", "hdfs", "s3a"))
    c = cluster(settings)
    groups = [[s for s in c.services if s.name.startswith("kafka-")],
              [c.service("hdfs"), c.service("spark-master")],
              [s for s in c.services if s.name.startswith("spark-worker-")]]  # fmt: skip
    for group in groups:
        for svc in group:
            svc.start(c.state, wait=False)
        for svc in group:
            svc.wait_ready(c.state, timeout_s)
    created = create_topics(cluster_settings(settings))
    if created:
        say(f"cluster: created topics {', '.join(created)} (replication {REPLICATION[0]}, "
            f"min.insync.replicas {REPLICATION[1]})")
    return c


def down(settings: Settings) -> list[str]:
    """Stop every cluster process we started (reverse order); returns the ones stopped.

    The brokers get their SIGTERM together: one by one, the last would wait out its grace
    time for a controlled shutdown that a quorum of one can no longer grant.
    """
    from concurrent.futures import ThreadPoolExecutor

    c = cluster(settings)
    brokers = [s for s in c.services if s.name.startswith("kafka-")]
    stopped = [s.name for s in reversed(c.services) if s not in brokers and s.stop(c.state)]
    with ThreadPoolExecutor(len(brokers)) as pool:
        done = list(pool.map(lambda s: s.stop(c.state), brokers))
    return stopped + [s.name for s, ok in zip(brokers, done, strict=True) if ok]


def status(settings: Settings) -> list[tuple[str, str, int | None, bool]]:
    """(name, address, our pid, healthy) per cluster process."""
    c = cluster(settings)
    return [(s.name, s.address(c.state), s.running_pid(c.state), s.healthy(c.state))
            for s in c.services]  # fmt: skip


def submit_command(settings: Settings, wheel: Path, main: Path) -> list[str]:
    """``spark-submit`` of the streaming job to the cluster's master, the way the README tells
    users: the project's wheel on ``--py-files``, Spark's Kafka connector on ``--jars``; one
    executor per worker (``cluster_worker_cores`` each)."""
    jars = sorted(str(p) for p in Path(settings.spark_jars_dir).glob("*.jar"))
    cores = settings.cluster_workers * settings.cluster_worker_cores
    return [str(spark_home() / "bin" / "spark-submit"), "--master", settings.spark_master,
            "--driver-memory", "1g", "--executor-memory", "768m",
            "--total-executor-cores", str(cores), "--jars", ",".join(jars),
            "--py-files", str(wheel), str(main)]  # fmt: skip


def fs_shell(settings: Settings, args: list[str],
             s3a: bool = False) -> subprocess.CompletedProcess[str]:
    """``hadoop fs`` (Hadoop's ``FsShell``) with the Hadoop client inside pyspark, the one the
    job uses, e.g. ``-ls -R /carbonpipe`` on the cluster's HDFS (its default file system);
    ``s3a``: with the S3A jars (``infra/s3a``) on the class path. No Hadoop install needed."""
    lay = home_layout(settings)
    conf = lay.home / "cluster" / "fs-client"
    conf.mkdir(parents=True, exist_ok=True)
    default_fs = f"hdfs://{HOST}:{settings.cluster_hdfs_port}"
    (conf / "core-site.xml").write_text(
        f"<configuration><property><name>fs.defaultFS</name><value>{default_fs}</value>"
        "</property></configuration>\n")
    path = [str(conf), f"{spark_home() / 'jars'}/*", *([f"{build.s3a_jars(lay)}/*"] if s3a else [])]
    cmd = [build.java(), "-Xmx256m", "-cp", ":".join(path), "org.apache.hadoop.fs.FsShell", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
