"""Where the job keeps its data, and what of the log is still there.

The cold store (per-event archive and window partials) and the checkpoint are URIs from the
settings; Spark's own Hadoop ``FileSystem`` answers for every scheme, so nothing here assumes
a local disk. ``log_bounds`` tells how much of the metrics log retention has left (a replay
from offset 0 is only complete while nothing was deleted); the rebuild marker makes a reset
of all stores one recoverable step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import SparkSession

from carbonpipe.core.config import Settings
from carbonpipe.core.kafka_security import host_topic_prefix, python_kwargs


def events_path(settings: Settings) -> str:
    return settings.cold_store_uri.rstrip("/") + "/events"


def windows_path(settings: Settings) -> str:
    return settings.cold_store_uri.rstrip("/") + "/windows"


def checkpoint_path(settings: Settings) -> str:
    return settings.checkpoint_uri.rstrip("/") + "/stream"


def delete_uri(spark: SparkSession, uri: str) -> None:
    """Deletes a folder on any Hadoop file system (local, hdfs://, s3a://)."""
    jvm: Any = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    path.getFileSystem(spark._jsc.hadoopConfiguration()).delete(path, True)


def uri_exists(spark: SparkSession, uri: str) -> bool:
    jvm: Any = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return bool(path.getFileSystem(spark._jsc.hadoopConfiguration()).exists(path))


def move_uri(spark: SparkSession, src: str, dst: str) -> bool:
    """Renames a folder on any Hadoop file system; False where ``src`` does not exist."""
    jvm: Any = spark._jvm
    s, d = jvm.org.apache.hadoop.fs.Path(src), jvm.org.apache.hadoop.fs.Path(dst)
    fs = s.getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(s):
        return False
    fs.mkdirs(d.getParent())
    if not fs.rename(s, d):
        raise OSError(f"could not move {src} to {dst}")
    return True


def superseded_path(settings: Settings, stamp: str) -> str:
    """Where `stream --rebuild` moves the cold store it replaces (kept, never deleted)."""
    return settings.cold_store_uri.rstrip("/") + f"/superseded/{stamp}"


# ---------------------------------------------------------------- the log's bounds
@dataclass(frozen=True)
class PartitionBounds:
    partition: int
    earliest: int  # first offset the log still holds (0 = nothing deleted yet)
    latest: int  # next offset to be written
    earliest_ts_ms: int | None  # broker timestamp of the record at ``earliest``


def log_bounds(settings: Settings, topic: str, timeout_s: float = 30.0) -> list[PartitionBounds]:
    """Per partition: the first and next offset of ``topic`` and the first record's time.

    [] when the topic does not exist. Read with a plain consumer (no group, nothing
    committed), so it works before Spark starts and without touching the job's checkpoint.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        **python_kwargs(settings),
        enable_auto_commit=False,
        request_timeout_ms=int(timeout_s * 1000),
        consumer_timeout_ms=int(timeout_s * 1000),
        allow_auto_create_topics=False,  # asking must not create it (with default configs)
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        first = consumer.beginning_offsets(tps)
        last = consumer.end_offsets(tps)
        out = []
        for tp in tps:
            ts = None
            if first[tp] < last[tp]:
                consumer.assign([tp])
                consumer.seek(tp, first[tp])
                recs = consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=1)
                ts = next((r.timestamp for rs in recs.values() for r in rs), None)
            out.append(PartitionBounds(tp.partition, first[tp], last[tp], ts))
        return out
    finally:
        consumer.close()


def metrics_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """The topics the job reads: the metrics topic, or with host topics every host's."""
    if not settings.kafka_host_topics:
        return [settings.metrics_topic]
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
                             request_timeout_ms=int(timeout_s * 1000),
                             **python_kwargs(settings))  # fmt: skip
    try:
        prefix = host_topic_prefix(settings)
        return sorted(t for t in consumer.topics() if t.startswith(prefix))
    finally:
        consumer.close()


def history_gaps(settings: Settings, topic: str | None = None) -> list[PartitionBounds]:
    """The partitions of the metrics log (or ``topic``) that no longer start at offset 0."""
    return [b for b in log_bounds(settings, topic or settings.metrics_topic) if b.earliest > 0]


def describe_gaps(topic: str, gaps: list[PartitionBounds]) -> str:
    """What a replay from the log would miss, partition by partition."""
    lines = []
    for g in gaps:
        when = (
            "all written before "
            + datetime.fromtimestamp(g.earliest_ts_ms / 1000, timezone.utc).isoformat()
            + ", when the oldest record still there was written"
            if g.earliest_ts_ms is not None
            else "when they were written is unknown: the partition holds nothing now"
        )
        lines.append(
            f"{topic}[{g.partition}]: offsets 0..{g.earliest - 1} are gone "
            f"(the log starts at {g.earliest}; {when})"
        )
    return "\n  ".join(lines)


# ---------------------------------------------------------------- rebuild marker
# `stream --rebuild` resets three places that cannot change in one transaction (checkpoint,
# hot store, cold store). This document, in the hot store beside the results, is written
# before the first of them and deleted after the last: while it exists, every start refuses.
REBUILD_MARKER = "rebuild_marker"


def begin_rebuild(db: Any, stamp: str, seed: dict[str, Any] | None = None) -> None:
    """``seed``: what the rebuild takes from the archive (kept, so a second try finds it)."""
    db[REBUILD_MARKER].replace_one(
        {"_id": "rebuild"},
        {"_id": "rebuild", "started": stamp, "state": "resetting", "seed": seed},
        upsert=True,
    )


def unfinished_rebuild(db: Any) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = db[REBUILD_MARKER].find_one({"_id": "rebuild"})
    return doc


def end_rebuild(db: Any) -> None:
    db[REBUILD_MARKER].delete_one({"_id": "rebuild"})


# ---------------------------------------------------------------- archive coverage
# `stream --rebuild` after retention deleted the start of the log rebuilds the lost part from
# the per-event archive. That is complete only where (1) the job read those offsets (its last
# committed batch ends past them) and (2) the archive was on for every batch; this document
# records the first batch that ran with it off (read before a rebuild drops the hot store).
ARCHIVE_STATE = "archive_state"


def note_archive_off(db: Any, batch_id: int) -> None:
    """Marks the archive incomplete from ``batch_id`` on (kept: the hole never fills)."""
    if db[ARCHIVE_STATE].find_one({"_id": "off"}) is None:
        db[ARCHIVE_STATE].insert_one({"_id": "off", "first_batch": batch_id,
                                      "at": datetime.now(timezone.utc)})  # fmt: skip


def archive_off_since(db: Any) -> int | None:
    doc = db[ARCHIVE_STATE].find_one({"_id": "off"})
    return None if doc is None else int(doc["first_batch"])


def committed_offsets(spark: SparkSession, settings: Settings) -> dict[str, dict[int, int]]:
    """Per topic and partition: the offset the job's last committed batch read up to
    (exclusive), from Spark's checkpoint (``commits/N`` + ``offsets/N``); {} without one."""
    import json

    jvm: Any = spark._jvm
    cp = checkpoint_path(settings)
    commits = jvm.org.apache.hadoop.fs.Path(cp + "/commits")
    fs = commits.getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(commits):
        return {}
    done = [int(n) for s in fs.listStatus(commits) if (n := s.getPath().getName()).isdigit()]
    if not done:
        return {}
    path = jvm.org.apache.hadoop.fs.Path(f"{cp}/offsets/{max(done)}")
    stream = fs.open(path)
    try:
        text = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()
    out: dict[str, dict[int, int]] = {}
    for line in str(text).splitlines()[2:]:  # "v1", the batch's metadata, one line per source
        if line.strip().startswith("{"):
            for topic, parts in json.loads(line).items():
                out[topic] = {int(p): int(o) for p, o in parts.items()}
    return out
