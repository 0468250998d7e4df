"""Build what the local services need: Kafka's jars and Spark's Kafka connector (Maven), the
FerretDB binary (Go). Each output carries a digest stamp of its sources, so an edited pom or
``main.go`` triggers a rebuild and an unchanged one costs a few hashes. ``infra/setup.sh`` and
``carbonpipe up`` both call ``ensure_built``, so the two never disagree.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from carbonpipe.core.config import REPO_ROOT, Settings
from carbonpipe.core.layout import Layout
from carbonpipe.services.process import StackError, locked
from carbonpipe.services.service import home_layout, say

INFRA = REPO_ROOT / "infra"
KAFKA_JAR = "kafka_2.13-*.jar"  # the marker that Kafka's jars are there


def kafka_jars(layout: Layout) -> Path:
    return layout.jars / "kafka"


def hdfs_jars(layout: Layout) -> Path:
    """Hadoop's mini-cluster (NameNode + DataNode) of the local cluster (``infra/hdfs``)."""
    return layout.jars / "hdfs"


def s3a_jars(layout: Layout) -> Path:
    """hadoop-aws and its AWS SDK bundle for ``s3a://`` stores (``infra/s3a``)."""
    return layout.jars / "s3a"


HDFS_JAR = "hadoop-client-minicluster-*.jar"
S3A_JAR = "hadoop-aws-*.jar"


def ferretdb_binary(layout: Layout) -> Path:
    return layout.bin / "ferretdb-embedded"


def java() -> str:
    """The java executable (JAVA_HOME first), checked to be 17 or newer as Kafka 4 needs."""
    java_home = os.environ.get("JAVA_HOME")
    cand = Path(java_home) / "bin" / "java" if java_home else None
    found = str(cand) if cand and cand.exists() else shutil.which("java")
    if not found:
        raise StackError("Java 17 not found: apt-get install -y openjdk-17-jre-headless")
    out = subprocess.run([found, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)', out)
    if not m or int(m.group(1)) < 17:
        raise StackError(
            f"Java 17+ needed, found {out.splitlines()[0] if out else '?'}: "
            "apt-get install -y openjdk-17-jre-headless (or set JAVA_HOME)"
        )
    return found


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
    say(f"{what}: done in {time.monotonic() - t0:.0f}s (log {log})")


def _maven_jars(pom: Path, out: Path, marker: str, what: str, logs: Path) -> None:
    stamp = out / ".built-from"
    ours = stamp.exists()
    if any(out.glob(marker)) and (not ours or _stamp_ok(stamp, pom)):
        return  # up to date, or jars provided by someone else (e.g. the Docker image)
    mvn = _tool("mvn", "apt-get install -y maven (needs Java 17 and access to Maven Central)")
    say(f"{what}: resolving with Maven into {out} (first time downloads ~60 MB) ...")
    if ours:
        shutil.rmtree(out)  # pom changed: old versions must not stay on the classpath
    out.mkdir(parents=True, exist_ok=True)
    cmd = [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
           f"-DoutputDirectory={out}"]
    _run_build(cmd, pom.parent, logs / f"build-{pom.parent.name}.log", what, dict(os.environ))
    if not any(out.glob(marker)):
        raise StackError(f"{what}: Maven succeeded but {marker} is missing from {out}")
    _write_stamp(stamp, pom)


def _ferretdb(layout: Layout) -> None:
    """FerretDB 1.24 from the Go module proxy, with ``infra/ferretdb/patches.json`` applied.

    The module is copied out of Go's module cache into ``<home>/bin/ferretdb-src``, each patch
    (an exact text replacement that must match once, with the reason beside it) is applied,
    and the binary is built against the copy (``go mod edit -replace`` on a copy of our
    ``go.mod``): the sources in ``infra/`` stay as they are, and a FerretDB version whose text
    moved fails the build here, loudly, instead of shipping without the fix.
    """
    import json

    src = INFRA / "ferretdb"
    patches_file = src / "patches.json"
    sources = (src / "main.go", src / "go.mod", src / "go.sum", patches_file)
    binary = ferretdb_binary(layout)
    stamp = binary.with_suffix(".built-from")
    if binary.exists() and _stamp_ok(stamp, *sources):
        return
    go = _tool("go", "install Go >= 1.24 from https://go.dev/dl/ (it fetches FerretDB via GOPROXY)")
    say(f"ferretdb: go build -> {binary} (first time: a few minutes) ...")
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "-mod=mod")
    env["CGO_ENABLED"] = "0"  # FerretDB's SQLite is pure Go; no C toolchain needed
    log = layout.logs / "build-ferretdb.log"
    work = layout.bin / "ferretdb-src"
    shutil.rmtree(work, ignore_errors=True)
    (work / "cmd").mkdir(parents=True)
    for f in sources[:3]:
        shutil.copy2(f, work / "cmd" / f.name)
    patches = json.loads(patches_file.read_text())
    for module in sorted({p["module"] for p in patches}):
        version = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(\S+)",
                            (src / "go.mod").read_text(), re.M)  # fmt: skip
        if version is None:
            raise StackError(f"ferretdb: {module} is not required by {src / 'go.mod'}")
        ref = f"{module}@{version.group(1)}"
        found = subprocess.run([go, "mod", "download", "-json", ref], cwd=work / "cmd",
                               env=env, capture_output=True, text=True)  # fmt: skip
        if found.returncode != 0:
            raise StackError(f"ferretdb: go mod download {module} failed: {found.stderr[-500:]}")
        copy = work / module.rsplit("/", 1)[-1]
        shutil.copytree(json.loads(found.stdout)["Dir"], copy)
        for dirpath, _dirs, files in os.walk(copy):  # the module cache is read-only
            for name in [".", *files]:
                os.chmod(os.path.join(dirpath, name), 0o755 if name == "." else 0o644)
        for p in (p for p in patches if p["module"] == module):
            target = copy / p["file"]
            text = target.read_text()
            if text.count(p["old"]) != 1:
                raise StackError(f"ferretdb: patch for {p['file']} no longer applies to "
                                 f"{module} {version.group(1)}: see {patches_file}")  # fmt: skip
            target.write_text(text.replace(p["old"], p["new"]))
        _run_build([go, "mod", "edit", f"-replace={module}={copy}"], work / "cmd", log,
                   "ferretdb: use the patched module", env)  # fmt: skip
    cmd = [go, "build", "-trimpath", "-o", str(binary), "."]
    _run_build(cmd, work / "cmd", log, "ferretdb", env)
    _write_stamp(stamp, *sources)


def ensure_built(settings: Settings, parts: Iterable[str] = ("kafka", "spark", "mongo")) -> None:
    """Build what is missing: Kafka jars, Spark's Kafka connector jars, the FerretDB binary;
    on request (``parts``) the cluster's HDFS mini-cluster and the S3A jars.

    Cheap when everything is there (a few stat calls and hashes), so callers just call it.
    """
    if not INFRA.is_dir():
        raise StackError(
            f"the local stack is built from infra/ (Maven poms, FerretDB sources), which a pip "
            f"install does not carry ({INFRA} is absent): clone the repository and run "
            "`make demo`, or `docker compose up`; `carbonpipe collect --stdout` and "
            "`carbonpipe schedule` work without it"
        )
    layout = home_layout(settings)
    wanted = set(parts)
    with locked(layout.run, "build"):
        if "kafka" in wanted:
            java()
            _maven_jars(INFRA / "kafka" / "pom.xml", kafka_jars(layout), KAFKA_JAR,
                        "kafka jars", layout.logs)
        if "spark" in wanted:
            _maven_jars(INFRA / "spark" / "pom.xml", Path(settings.spark_jars_dir),
                        "spark-sql-kafka-*.jar", "spark kafka connector jars", layout.logs)
        if "hdfs" in wanted:  # the local cluster's HDFS (`carbonpipe cluster up`)
            _maven_jars(INFRA / "hdfs" / "pom.xml", hdfs_jars(layout), HDFS_JAR,
                        "hdfs mini-cluster jars", layout.logs)
        if "s3a" in wanted:
            _maven_jars(INFRA / "s3a" / "pom.xml", s3a_jars(layout), S3A_JAR,
                        "s3a jars (hadoop-aws + AWS SDK bundle, ~600 MB)", layout.logs)
        if "mongo" in wanted and settings.uses_embedded_mongo:
            _ferretdb(layout)
