"""Dead letters: bounded in size whatever the record, and replayed once their cause is fixed.

Real Kafka, Spark and FerretDB; the job runs ``--once`` per step.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from carbonpipe.core.config import Settings
from spark_jobs.dlq import _letter, counts, read_letters, select
from spark_jobs.storage import log_bounds
from tests.spark_jobs.job_runs import cli, counted, event, job_settings, recent, run_job
from tests.spark_jobs.pipeline_harness import consume_all, produce


def _envelope(reason: str, raw: str, detected: str, truncated: bool = False) -> bytes:
    return json.dumps({"reason": reason, "raw": raw, "raw_truncated": truncated,
                       "detected_at": detected}).encode()  # fmt: skip


def test_letters_are_selected_by_reason_and_time_and_counted_per_run() -> None:
    ev = json.dumps(event(1, recent(0)))
    letters = [
        _letter("t:0:1", _envelope("late", ev, "2026-01-01T10:00:00Z")),
        _letter("t:0:2", _envelope("late", ev, "2026-01-02T10:00:00Z")),
        _letter("t:0:3", _envelope("wrong_type:epoch", ev, "2026-01-02T11:00:00Z")),
        _letter("t:0:4", _envelope("not_json", "{oops", "2026-01-02T12:00:00Z")),
    ]
    assert [d.key for d in select(letters, reason="wrong_type")] == ["t:0:3"]
    assert [d.key for d in select(letters, reason="wrong_type:epoch")] == ["t:0:3"]
    since = datetime(2026, 1, 2, tzinfo=timezone.utc)
    until = datetime(2026, 1, 2, 12, tzinfo=timezone.utc)
    assert [d.key for d in select(letters, since=since, until=until)] == ["t:0:2", "t:0:3"]
    assert counts(letters) == [
        {"reason": "late", "run_id": "run-h", "count": 2},
        {"reason": "not_json", "run_id": None, "count": 1},
        {"reason": "wrong_type:epoch", "run_id": "run-h", "count": 1},
    ]


@pytest.fixture()
def job(unique_topics: Settings, tmp_path: Path) -> Settings:
    return job_settings(unique_topics, tmp_path)


@pytest.mark.integration
@pytest.mark.fault
def test_a_poison_record_leaves_a_bounded_dead_letter(job: Settings, tmp_path: Path) -> None:
    """200 KB of 0x01 escapes to 1.2 MB of JSON: the envelope must stay under Kafka's 1 MB."""
    s = job
    poison = b"\x01" * 200_000
    produce(s, s.metrics_topic, [(None, poison), ("run-h", event(0, recent(5)))])
    rc, out = run_job(s, tmp_path / "once.log", "--once")
    assert rc == 0, out
    assert counted(s) == 1  # the good record behind it is counted
    [letter] = consume_all(s, s.dlq_topic)
    assert len(letter.value) < 1_000_000
    env = json.loads(letter.value)
    assert env["raw_truncated"] is True and env["raw_bytes"] == len(poison)
    assert env["raw_sha256"] == hashlib.sha256(poison).hexdigest()
    assert len(env["raw"]) == 64 * 1024
    assert letter.key.decode() == f"{s.metrics_topic}:{env['partition']}:{env['offset']}"
    # never replayed: a cut record would be another event
    res = cli(s, "dlq", "replay")
    assert res.returncode == 0 and "replayed 0 of 1" in res.stdout, res.stdout + res.stderr


@pytest.mark.integration
@pytest.mark.fault
def test_replayed_dead_letters_count_once(job: Settings, tmp_path: Path) -> None:
    s = job.model_copy(update={"lateness_s": 60})
    produce(s, s.metrics_topic, [("run-h", event(i, recent(10 - i))) for i in range(5)])
    rc, out = run_job(s, tmp_path / "1.log", "--once")
    assert rc == 0 and counted(s) == 5, out
    # Events an hour behind their own host's newest (a spool flushed late): dead-lettered
    # as `late` (lateness is judged per host).
    produce(s, s.metrics_topic, [("run-h", event(5 + i, recent(60 + i))) for i in range(3)])
    rc, out = run_job(s, tmp_path / "2.log", "--once")
    assert rc == 0 and counted(s) == 5, out

    listed = cli(s, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"reason": "late", "run_id": "run-h", "count": 3}]
    assert counts(select(read_letters(s), reason="wrong_type")) == []

    end = sum(b.latest for b in log_bounds(s, s.metrics_topic))
    dry = cli(s, "dlq", "replay", "--reason", "late", "--dry-run")
    assert "would replay 3 of 3" in dry.stdout, dry.stdout + dry.stderr
    assert sum(b.latest for b in log_bounds(s, s.metrics_topic)) == end  # nothing sent

    # The cause is fixed (a lateness that covers the host), then the letters are replayed.
    fixed = str(3 * 3600)
    res = cli(s, "dlq", "replay", "--reason", "late", "--since", "2000-01-01T00:00:00Z")
    assert res.returncode == 0 and "replayed 3 of 3" in res.stdout, res.stdout + res.stderr
    rc, out = run_job(s, tmp_path / "3.log", "--once", CARBONPIPE_LATENESS_S=fixed)
    assert rc == 0, out
    assert counted(s) == 8

    again = cli(s, "dlq", "replay", "--reason", "late")  # the replay marker: nothing resent
    assert "replayed 0 of 3" in again.stdout and "3 replayed before" in again.stdout
    assert sum(b.latest for b in log_bounds(s, s.metrics_topic)) == end + 3

    # Sent again anyway (a crash between the send and the marker): the job's de-duplication
    # by (host, run_id, seq) must count them once.
    produce(s, s.metrics_topic, [("run-h", json.loads(d.raw or "")) for d in read_letters(s)])
    rc, out = run_job(s, tmp_path / "4.log", "--once", CARBONPIPE_LATENESS_S=fixed)
    assert rc == 0, out
    assert counted(s) == 8
