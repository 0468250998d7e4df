"""An aggregate added to ``carbonpipe.core.aggregates.AGGREGATES`` alone reaches every sink.

The job and the CLI run in their own processes (as in production), so the new aggregates are
added to the table in those processes by a ``sitecustomize`` module on their PYTHONPATH: the
table is the only thing that changes, and MongoDB (windows and runs), the Parquet window
partials, ``carbonpipe runs --json`` and ``carbonpipe sql`` must all carry them, merged the way
they declare.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import Settings
from carbonpipe.core.timeutil import utc_iso
from carbonpipe.core.versions import newest
from tests.spark_jobs.pipeline_harness import StreamJob, produce, settings_env, wait_for

pytestmark = pytest.mark.integration

SITECUSTOMIZE = '''
import carbonpipe.core.aggregates as A
A.AGGREGATES = (*A.AGGREGATES,
    A.Aggregate("max_interval_s", "max(interval_s)", "max", "s"),
    A.Aggregate("sent_bytes", "sum(net_sent_bytes)", "sum", "bytes"),
)
'''
T0 = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)


def event(run_id: str, t_s: int, interval_s: int, sent_bytes: int) -> dict[str, Any]:
    return {
        "timestamp": utc_iso(T0 + timedelta(seconds=t_s)), "run_id": run_id, "user_id": "u",
        "model_name": "m", "host": "h1", "region": "GB", "interval_s": interval_s,
        "cpu_energy_j": 100.0, "cpu_method": "measured", "net_sent_bytes": sent_bytes,
    }  # fmt: skip


# run-x: two windows (0-60 s, 60-120 s); run-y: one window.
EVENTS = [event("run-x", 10, 5, 1000), event("run-x", 30, 9, 2000), event("run-x", 70, 3, 500),
          event("run-y", 20, 7, 40)]  # fmt: skip
WANT_RUNS = {"run-x": (9, 3500), "run-y": (7, 40)}  # (max interval_s, sum of sent bytes)
WANT_WINDOWS = {("run-x", 0): (9, 3000), ("run-x", 60): (3, 500), ("run-y", 0): (7, 40)}


def test_a_new_aggregate_reaches_mongo_parquet_and_the_cli(
    unique_topics: Settings, tmp_path: Path
) -> None:
    s = unique_topics.model_copy(update={
        "cold_store_uri": str(tmp_path / "cold"), "checkpoint_uri": str(tmp_path / "ckpt"),
        "trigger_s": 1.0,
    })  # fmt: skip
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    produce(s, s.metrics_topic, [(e["run_id"], e) for e in EVENTS])

    from pymongo import MongoClient

    db = MongoClient(s.mongo_uri, tz_aware=True)[s.mongo_db]
    job = StreamJob(s, tmp_path / "job.log", PYTHONPATH=pythonpath)
    try:
        wait_for(
            "every event in MongoDB",
            lambda: sum(d["n_events"] for d in newest(db["runs"].find())) >= len(EVENTS),
            job,
        )
    finally:
        job.stop()

    t0_s = int(T0.timestamp())
    windows = {(d["run_id"], d["window_start_s"] - t0_s): d for d in newest(db["windows"].find())}
    assert {k: (d["max_interval_s"], d["sent_bytes"]) for k, d in windows.items()} == WANT_WINDOWS
    runs = {d["run_id"]: d for d in newest(db["runs"].find())}
    assert {k: (d["max_interval_s"], d["sent_bytes"]) for k, d in runs.items()} == WANT_RUNS

    import pyarrow.dataset as ds

    partials = ds.dataset(tmp_path / "cold" / "windows", format="parquet", partitioning="hive")
    got: dict[tuple[str, int], list[int]] = {}
    for r in partials.to_table().to_pylist():
        acc = got.setdefault((r["run_id"], r["window_start_s"] - t0_s), [0, 0])
        acc[0] = max(acc[0], r["max_interval_s"])
        acc[1] += r["sent_bytes"]
    assert {k: tuple(v) for k, v in got.items()} == WANT_WINDOWS

    env = settings_env(s, PYTHONPATH=pythonpath)

    def cli(*args: str) -> Any:
        out = subprocess.run([sys.executable, "-m", "carbonpipe.cli", *args], env=env,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout)

    listed = {r["run_id"]: (r["max_interval_s"], r["sent_bytes"]) for r in cli("runs", "--json")}
    assert listed == WANT_RUNS
    rows = cli("sql", "SELECT run_id, MAX(max_interval_s) AS i, SUM(sent_bytes) AS b "
                      "FROM windows GROUP BY run_id", "--json")  # fmt: skip
    assert {r["run_id"]: (r["i"], r["b"]) for r in rows} == WANT_RUNS
