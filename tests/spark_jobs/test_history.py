"""History survives: a rebuild never replays a log that lost its start, never half-resets
silently, and offsets lost under a running job stop it with a message.

Real Kafka, Spark and FerretDB. The log start offset is moved the way retention moves it;
on the local broker retention only runs every 5 minutes (``log.retention.check.interval.ms``),
so after waiting a while for it the test deletes the records itself (``delete_records``, the
same log-start move retention makes).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from carbonpipe.core.config import ConfigError, Settings, load_settings
from carbonpipe.core.versions import newest
from carbonpipe.services import stack
from spark_jobs.hot_store import client_options
from spark_jobs.storage import PartitionBounds, describe_gaps, log_bounds
from tests.spark_jobs.job_runs import (
    counted,
    event,
    job_settings,
    mongo,
    parquet_event_count,
    recent,
    run_job,
)
from tests.spark_jobs.pipeline_harness import produce


def test_mongo_calls_time_out_and_wait_for_a_majority_only_on_a_replica_set() -> None:
    plain = client_options("mongodb://127.0.0.1:27018/", 5.0)
    assert plain["socketTimeoutMS"] == plain["serverSelectionTimeoutMS"] == 5000
    assert plain["wTimeoutMS"] == 5000 and "w" not in plain  # FerretDB, standalone: w:1
    rs = client_options("mongodb://a,b,c/?replicaSet=rs0", 5.0)
    assert rs["w"] == "majority" and rs["journal"] is True
    assert client_options("mongodb+srv://cluster.example/", 5.0)["w"] == "majority"
    assert "w" not in client_options("mongodb://a,b/?replicaSet=rs0&w=1", 5.0)  # URI wins


@pytest.mark.parametrize(("env", "value"), [
    ("CARBONPIPE_METRICS_RETENTION_MS", "1000"),
    ("CARBONPIPE_METRICS_RETENTION_MS", "0"),
    ("CARBONPIPE_MONGO_TIMEOUT_S", "0"),
    ("CARBONPIPE_STREAM_RETRY_INITIAL_S", "-1"),
    ("CARBONPIPE_STREAM_MAX_CONSECUTIVE_FAILURES", "-1"),
])  # fmt: skip
def test_new_settings_are_range_checked(
    env: str, value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=env):
        load_settings(home=tmp_path)


def test_a_gap_is_described_by_partition_offsets_and_time() -> None:
    text = describe_gaps("m", [PartitionBounds(2, 42, 50, 1_767_225_600_000)])
    assert text == (
        "m[2]: offsets 0..41 are gone (the log starts at 42; all written before "
        "2026-01-01T00:00:00+00:00, when the oldest record still there was written)"
    )


@pytest.fixture()
def job(unique_topics: Settings, tmp_path: Path) -> Settings:
    return job_settings(unique_topics, tmp_path, lateness_s=3600)


def _counted_once(s: Settings, tmp_path: Path) -> None:
    """10 events in the log, counted by one `--once` run."""
    produce(s, s.metrics_topic, [("run-h", event(i, recent(30 - i))) for i in range(10)])
    rc, out = run_job(s, tmp_path / "once.log", "--once")
    assert rc == 0 and counted(s) == 10, out


@pytest.mark.integration
def test_metrics_topic_keeps_history(unique_topics: Settings) -> None:
    """Created with unlimited retention, and set back to it on a topic that has 7 days; the
    per-event archive is on by default."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    s = unique_topics
    assert s.cold_events
    topic = ConfigResource(ConfigResourceType.TOPIC, s.metrics_topic)

    def retention() -> str:
        found = admin.describe_configs([topic])
        return str(found.get("topic", found)[s.metrics_topic]["retention.ms"]["value"])

    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap_servers)
    try:
        assert retention() == "-1"
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, s.metrics_topic,
                                             configs={"retention.ms": "604800000"})])  # fmt: skip
        assert retention() == "604800000"
        stack.create_topics(s)
        assert retention() == "-1"
    finally:
        admin.close()


def _move_log_start(s: Settings, wait_s: float = 20.0) -> None:
    """Short retention on the metrics topic, then wait until the log no longer starts at 0."""
    from kafka import TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap_servers)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, s.metrics_topic,
                                            configs={"retention.ms": "1000",
                                                     "segment.ms": "500"})])  # fmt: skip
        for i in range(4):  # new records roll the segments that retention can then delete
            produce(s, s.metrics_topic, [("run-h", event(100 + i, recent(1)))])
            time.sleep(0.6)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if all(b.earliest > 0 for b in log_bounds(s, s.metrics_topic) if b.latest > 0):
                return
            time.sleep(1.0)
        ends = {b.partition: b.latest for b in log_bounds(s, s.metrics_topic)}
        admin.delete_records({TopicPartition(s.metrics_topic, p): end
                              for p, end in ends.items() if end > 0})  # fmt: skip
    finally:
        admin.close()
    assert all(b.earliest > 0 for b in log_bounds(s, s.metrics_topic) if b.latest > 0)


@pytest.mark.integration
@pytest.mark.fault
def test_rebuild_refuses_when_the_log_lost_its_start(job: Settings, tmp_path: Path) -> None:
    s = job
    _counted_once(s, tmp_path)
    db = mongo(s)
    runs_before = sorted(d["_id"] for d in db["runs"].find())
    cold = Path(s.cold_store_uri)
    files_before = sorted(str(p) for p in cold.rglob("*.parquet"))
    assert parquet_event_count(cold) == 10

    _move_log_start(s)  # 4 more events the job never read, then the log's start deleted
    rc, out = run_job(s, tmp_path / "rebuild.log", "--rebuild", "--once")
    assert rc != 0, out
    assert "refusing to rebuild" in out and f"{s.metrics_topic}[0]: offsets 0.." in out, out
    assert f"the job never read {s.metrics_topic}[0] offsets 10..13" in out, out
    # untouched: hot store, cold store and checkpoint
    assert sorted(d["_id"] for d in db["runs"].find()) == runs_before
    assert counted(s) == 10
    assert sorted(str(p) for p in cold.rglob("*.parquet")) == files_before
    assert (Path(s.checkpoint_uri) / "stream" / "offsets").is_dir()

    # The same gap under the running job (its checkpoint is at offset 10, the log now starts
    # past that): an error that says what happened, not a silent skip.
    rc, out = run_job(s, tmp_path / "gap.log", "--once")
    assert rc != 0, out
    assert "are gone from the log" in out and "--accept-loss" in out, out
    assert counted(s) == 10


@pytest.mark.integration
@pytest.mark.fault
def test_a_crash_inside_rebuild_is_never_continued_silently(job: Settings, tmp_path: Path) -> None:
    s = job
    _counted_once(s, tmp_path)

    rc, out = run_job(s, tmp_path / "crash.log", "--rebuild", "--once",
                      CARBONPIPE_FAULT_EXIT_AT="in_rebuild")  # fmt: skip
    assert rc == 137, out
    assert mongo(s)["runs"].count_documents({}) == 0  # half-way: hot store gone, cold not

    rc, out = run_job(s, tmp_path / "plain.log", "--once")  # e.g. `restart: unless-stopped`
    assert rc != 0, out
    assert "did not finish" in out and "--rebuild" in out, out
    assert mongo(s)["runs"].count_documents({}) == 0  # it refused before writing anything

    rc, out = run_job(s, tmp_path / "rebuild.log", "--rebuild", "--once")
    assert rc == 0, out
    assert counted(s) == 10  # once, from the log
    cold = Path(s.cold_store_uri)
    assert parquet_event_count(cold) == 10  # the new archive; the old one moved aside
    aside = list((cold / "superseded").glob("*/events"))
    assert len(aside) == 1 and parquet_event_count(aside[0].parent) == 10


def _delete_before(s: Settings, offset: int) -> int:
    """Moves the start of the (one) partition holding the events to ``offset``, as retention
    moves it; returns that partition."""
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient

    (part,) = [b.partition for b in log_bounds(s, s.metrics_topic) if b.latest > 0]
    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap_servers)
    try:
        admin.delete_records({TopicPartition(s.metrics_topic, part): offset})
    finally:
        admin.close()
    assert [b.earliest for b in log_bounds(s, s.metrics_topic) if b.latest > 0] == [offset]
    return part


def _run_figures(s: Settings) -> tuple[int, float, float, int]:
    (run,) = newest(mongo(s)["runs"].find())
    return int(run["n_events"]), run["energy_kwh"], run["co2_g"], int(run.get("duplicates", 0))


@pytest.mark.integration
@pytest.mark.fault
def test_rebuild_counts_what_retention_deleted_from_the_archive(
    job: Settings, tmp_path: Path
) -> None:
    """The log lost offsets 0..5 after the job had read and archived them: ``--rebuild``
    counts those from the archive and the rest from the log, nothing lost or doubled, even
    when it crashes half-way through the archive's part and is run again."""
    s = job
    produce(s, s.metrics_topic, [("run-h", event(i, recent(30 - i))) for i in range(10)])
    produce(s, s.metrics_topic, [("run-h", event(3, recent(27)))])  # a resend, offset 10
    rc, out = run_job(s, tmp_path / "once.log", "--once")
    assert rc == 0, out
    n, kwh, co2, dup = _run_figures(s)
    assert (n, dup) == (10, 1)
    expected = (15, kwh * 1.5, co2 * 1.5, 1)  # five more of the same events follow
    part = _delete_before(s, 6)
    produce(s, s.metrics_topic, [("run-h", event(i, recent(30 - i))) for i in range(10, 15)])

    rc, out = run_job(s, tmp_path / "crash.log", "--rebuild", "--once",
                      CARBONPIPE_FAULT_EXIT_AT="in_seed")  # fmt: skip
    assert rc == 137, out  # the archive's part half counted; the marker says where it is

    rc, out = run_job(s, tmp_path / "rebuild.log", "--rebuild", "--once")
    assert rc == 0, out
    assert f"counted the archive's events below offsets {{{part}: 6}}" in out, out
    n, kwh, co2, dup = _run_figures(s)
    assert (n, dup) == (expected[0], expected[3])
    assert kwh == pytest.approx(expected[1]) and co2 == pytest.approx(expected[2])
    assert kwh == pytest.approx(15 * 360 / 3.6e6)
    cold = Path(s.cold_store_uri)
    assert parquet_event_count(cold) == 6 + 10  # offsets 0..5 from the archive, 6..15 the log

    # The new archive covers the gap in turn: a second rebuild gives the same figures.
    rc, out = run_job(s, tmp_path / "rebuild2.log", "--rebuild", "--once")
    assert rc == 0, out
    n, kwh, co2, dup = _run_figures(s)
    assert (n, dup) == (expected[0], expected[3]) and kwh == pytest.approx(expected[1])


@pytest.mark.integration
@pytest.mark.fault
def test_rebuild_refuses_where_the_archive_was_off(job: Settings, tmp_path: Path) -> None:
    s = job.model_copy(update={"cold_events": False})
    _counted_once(s, tmp_path)
    _delete_before(s, 4)
    rc, out = run_job(s, tmp_path / "rebuild.log", "--rebuild", "--once")
    assert rc != 0, out
    assert "the per-event archive was off from batch 0 on" in out, out
    assert counted(s) == 10  # untouched
