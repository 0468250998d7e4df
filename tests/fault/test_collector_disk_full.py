"""B8: the collector's spool disk fills while Kafka is away (reliability review H6, Tier B).

A real ``carbonpipe collect`` subprocess runs with RLIMIT_FSIZE at 64 KiB (SIGXFSZ ignored,
so writes past it fail with EFBIG instead of killing the process) against a private broker
that is stopped first and started again once the spool has hit the limit. The collector must
live to the end, and every seq it emitted must be in the topic, or counted lost
(``dropped_events`` and its exit report), or reported left in the spool; no seq is used for
two different events.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import REPO_ROOT, Settings
from carbonpipe.services import stack
from tests.spark_jobs.pipeline_harness import consume_all

FSIZE_LIMIT_BYTES = 64 * 1024


def _limit_file_size() -> None:
    """In the collector (and its job): files end at 64 KiB; EFBIG, not SIGXFSZ, past it."""
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT_BYTES, hard))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


class StderrLog:
    """The collector's stderr through a pipe (a file would hit the same 64 KiB limit)."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while needle not in self.text():
            assert time.monotonic() < end, f"no {needle!r} in stderr:\n{self.text()}"
            time.sleep(0.2)

    def join(self) -> None:
        self._thread.join(10)


@pytest.mark.fault
@pytest.mark.integration
def test_collector_survives_a_full_spool_disk(private_kafka: Settings, tmp_path: Path) -> None:
    settings = private_kafka
    run_id = f"diskfull-{time.time_ns()}"
    stop_flag = tmp_path / "stop"
    assert stack.stop_kafka(settings), "the private broker did not stop"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "CARBONPIPE_HOME": str(tmp_path / "home"),
        "CARBONPIPE_SPOOL_DIR": str(tmp_path / "spool"),
        "CARBONPIPE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "CARBONPIPE_METRICS_TOPIC": settings.metrics_topic,
    }
    job = f"import os,time\nwhile not os.path.exists({str(stop_flag)!r}): time.sleep(0.05)"
    proc = subprocess.Popen(
        [sys.executable, "-m", "carbonpipe.cli", "collect", "--zone", "GB", "--run-id", run_id,
         "--user", "u", "--model", "m", "--interval", "0.1", "--", sys.executable, "-c", job],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=_limit_file_size,
    )  # fmt: skip
    log = StderrLog(proc.stderr)
    try:
        log.wait_for("Kafka unreachable", 30)
        log.wait_for("spool write failed", 40)  # ~7 s of 1 KB events at 10 a second
        assert proc.poll() is None, log.text()
        stack.start_kafka(settings)
        log.wait_for("Kafka reachable again", 40)
        time.sleep(3)
        stop_flag.touch()
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.join()
    err = log.text()
    assert rc == 0, err  # alive to the end: the job's exit code, then the summary
    summary = re.search(r": [\d.]+ s, (\d+) events", err)
    assert summary, err
    emitted = int(summary.group(1))
    left = sum(int(n) for n in re.findall(r"(\d+) events remain spooled", err))
    lost = re.search(r"(\d+) events of this run were lost", err)
    dropped = int(lost.group(1)) if lost else 0

    print(err)  # shown with -s or on failure: what the collector said
    records = consume_all(settings, settings.metrics_topic, timeout_s=5)
    events = [e for e in (json.loads(m.value) for m in records) if e["run_id"] == run_id]
    seen: dict[int, str] = {}
    for e in events:  # a duplicate is allowed (at-least-once), a reused seq is not
        assert seen.setdefault(e["seq"], e["timestamp"]) == e["timestamp"], "a reused seq"
        assert e.get("dropped_events", 0) <= dropped
    assert set(seen) <= set(range(emitted))
    assert len(seen) + dropped + left == emitted, (len(seen), dropped, left, emitted, err)
    assert any(e["event_type"] == "end" for e in events) or left or dropped
