"""Helpers for tests that run the streaming job to completion (``--once``) and count results.

``pipeline_harness.StreamJob`` keeps a job running; these run it once with arguments
(``--rebuild``, ``--once``) and return its exit status and output, for the history, dead-letter
and fault tests.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from carbonpipe.core.config import REPO_ROOT, Settings
from carbonpipe.core.timeutil import utc_iso
from carbonpipe.core.versions import newest
from tests.spark_jobs.pipeline_harness import settings_env


def job_settings(settings: Settings, tmp_path: Path, **update: Any) -> Settings:
    """The test's settings with a cold store and checkpoint of its own, 1 s triggers."""
    return settings.model_copy(update={
        "cold_store_uri": str(tmp_path / "cold"),
        "checkpoint_uri": str(tmp_path / "checkpoints"),
        "trigger_s": 1.0,
        **update,
    })  # fmt: skip


def run_job(
    settings: Settings, log_path: Path, *args: str, timeout_s: float = 300, **env: str
) -> tuple[int, str]:
    """``python -m spark_jobs.stream ARGS`` to its end: (exit status, its output).

    A failing batch is retried twice, quickly, then the job gives up (status 1): a test
    sees the failure in the output instead of waiting for its timeout.
    """
    env = {"CARBONPIPE_STREAM_MAX_CONSECUTIVE_FAILURES": "2",
           "CARBONPIPE_STREAM_RETRY_INITIAL_S": "1", **env}  # fmt: skip
    with open(log_path, "wb") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "spark_jobs.stream", *args],
            cwd=REPO_ROOT,
            env=settings_env(settings, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout_s,
            check=False,
        )
    return proc.returncode, log_path.read_text(errors="replace")


def cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``carbonpipe ARGS`` against the test's settings."""
    return subprocess.run(
        [sys.executable, "-m", "carbonpipe.cli", *args],
        cwd=REPO_ROOT,
        env=settings_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def event(seq: int, at: datetime, run_id: str = "run-h", host: str = "h1") -> dict[str, Any]:
    """A valid metric event: 360 J of CPU over 10 s on GB (the static fallback applies)."""
    return {
        "timestamp": utc_iso(at), "run_id": run_id, "user_id": "u", "model_name": "m",
        "host": host, "region": "GB", "interval_s": 10, "seq": seq, "schema_version": 1,
        "cpu_energy_j": 360.0, "cpu_method": "measured",
    }  # fmt: skip


def recent(minutes_ago: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)


def mongo(settings: Settings) -> Any:
    from pymongo import MongoClient

    client: Any = MongoClient(settings.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=10_000)
    return client[settings.mongo_db]


def counted(settings: Settings) -> int:
    """Events the hot store counts, over all runs (newest version of each run)."""
    return int(sum(d["n_events"] for d in newest(mongo(settings)["runs"].find())))


def parquet_event_count(cold: Path) -> int:
    import pyarrow.dataset as ds

    if not (cold / "events").exists():
        return 0
    return int(ds.dataset(cold / "events", format="parquet", partitioning="hive").count_rows())
