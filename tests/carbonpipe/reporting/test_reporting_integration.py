"""Budgets, alerts, reports and the CodeCarbon export over a hot store filled through the real
pipeline (Kafka -> Spark job -> MongoDB), every command run as the ``carbonpipe`` CLI.

A kWh budget is set through the CLI; events that take it past 80 % and then 100 % are pushed
through the job; ``carbonpipe alerts --once`` (a fresh process each time: a restart) must leave
exactly one record per crossing in the alerts topic and make exactly one webhook call each,
even when run again, and even after a crash between the send and its mark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import Settings
from carbonpipe.core.timeutil import utc_iso
from carbonpipe.reporting.budgets import period_of
from tests.carbonpipe.reporting.hook_server import Hook, running
from tests.fault.scenario import J_PER_EVENT, KWH_PER_EVENT, job_settings, mongo
from tests.spark_jobs.pipeline_harness import (
    StreamJob,
    consume_all,
    produce,
    settings_env,
    wait_for,
)

pytestmark = pytest.mark.integration

LIMIT_KWH = 10 * KWH_PER_EVENT  # alice's monthly budget: ten events
MAX_EVENTS = 20  # per run; one every 10 s


def anchor(now: datetime, period: str = "month") -> datetime:
    """Where the events start: ten minutes ago, or the start of now's budget period when that
    is nearer (events must count in the period the budget is evaluated in). From the period's
    start the last event may lie ahead of now, but never more than the job accepts."""
    return max(now - timedelta(minutes=10), period_of(period, now).start)


T0 = anchor(datetime.now(timezone.utc).replace(microsecond=0))


@pytest.mark.parametrize("now", [datetime(2026, 12, 1, 0, 3, tzinfo=timezone.utc),
                                 datetime(2027, 1, 1, 0, 0, 1, tzinfo=timezone.utc),
                                 datetime(2026, 12, 17, 9, 30, tzinfo=timezone.utc)])
def test_the_events_fall_in_the_budget_period_whatever_now_is(now: datetime) -> None:
    from spark_jobs.transforms import MAX_SKEW_S

    t0 = anchor(now)
    last = t0 + timedelta(seconds=10 * (MAX_EVENTS - 1))
    assert period_of("month", t0) == period_of("month", now) == period_of("month", last)
    assert last <= now + timedelta(seconds=MAX_SKEW_S)  # not rejected as from the future
    assert t0 <= now - timedelta(minutes=10) or t0 == period_of("month", now).start


def ev(run: str, user: str, seq: int, region: str = "GB", **kw: Any) -> dict[str, Any]:
    return {"timestamp": utc_iso(T0 + timedelta(seconds=10 * seq)), "run_id": run,
            "user_id": user, "model_name": kw.pop("model", "resnet"), "host": f"h-{run}",
            "region": region, "interval_s": 10, "seq": seq, "schema_version": 1,
            "cpu_energy_j": J_PER_EVENT, "cpu_method": "measured", **kw}  # fmt: skip


@pytest.fixture()
def world(unique_topics: Settings, tmp_path: Path) -> Iterator[tuple[Settings, StreamJob, Hook]]:
    s = job_settings(unique_topics, tmp_path)
    job = StreamJob(s, tmp_path / "job.log")
    with running() as hook:
        try:
            yield s, job, hook
        finally:
            job.stop()


def cli(s: Settings, hook: Hook, *args: str, pue: str = "1.0") -> str:
    env = settings_env(s, CARBONPIPE_ALERTS_TOPIC=s.alerts_topic, CARBONPIPE_PUE=pue,
                       CARBONPIPE_ALERT_WEBHOOK_URL=hook.url,
                       CARBONPIPE_ALERT_WEBHOOK_BACKOFF_S="0.1")  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "carbonpipe.cli", *args], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def alert_keys(s: Settings) -> list[str]:
    return sorted(m.key.decode() for m in consume_all(s, s.alerts_topic, timeout_s=3))


def push(s: Settings, job: StreamJob, events: list[dict[str, Any]], total: int) -> None:
    produce(s, s.metrics_topic, [(e["run_id"], e) for e in events])
    db = mongo(s)
    wait_for(f"{total} events in the hot store",
             lambda: sum(d.get("n_events", 0) for d in db["runs"].find()) >= total, job)


def test_a_budget_crossing_alerts_once_per_threshold(
    world: tuple[Settings, StreamJob, Hook],
) -> None:
    s, job, hook = world
    budget = "user:alice/month/kwh"
    assert budget in cli(s, hook, "budget", "set", "--scope", "user:alice", "--period",
                         "month", "--limit-kwh", repr(LIMIT_KWH))  # fmt: skip
    first = [ev("a1", "alice", i) for i in range(8)] + [ev("b1", "bob", i) for i in range(20)]
    push(s, job, first, 28)  # alice at 80 %, bob far beyond (no budget)

    listed = {b["id"]: b for b in json.loads(cli(s, hook, "budget", "list", "--json"))}
    assert listed[budget]["used_pct"] == pytest.approx(80.0)
    assert listed[budget]["period_key"] == T0.strftime("%Y-%m")
    cli(s, hook, "alerts", "--once")
    cli(s, hook, "alerts", "--once")  # a second pass (a restart): nothing new
    assert alert_keys(s) == [f"{budget}|{T0:%Y-%m}|80"]
    assert len(hook.bodies) == 1 and "80 %" in hook.bodies[0]["text"]

    push(s, job, [ev("a2", "alice", i) for i in range(3)], 31)  # 110 %
    cli(s, hook, "alerts", "--once")
    # A crash after the send of the 100 % alert, before its mark: the record says unpublished.
    mongo(s)["alerts"].update_one({"_id": f"{budget}|{T0:%Y-%m}|100"},
                                  {"$set": {"published": False}})  # fmt: skip
    cli(s, hook, "alerts", "--once")
    keys = alert_keys(s)
    assert keys == sorted([f"{budget}|{T0:%Y-%m}|80", f"{budget}|{T0:%Y-%m}|100"])
    assert len(hook.bodies) == 2 and "100 %" in hook.bodies[1]["text"]
    record = json.loads(next(m.value for m in consume_all(s, s.alerts_topic, timeout_s=3)
                             if m.key.decode().endswith("|100")))  # fmt: skip
    assert record["used"] == pytest.approx(11 * KWH_PER_EVENT) and record["unit"] == "kWh"

    cli(s, hook, "budget", "delete", budget)
    assert json.loads(cli(s, hook, "budget", "list", "--json")) == []


def test_report_totals_equal_runs_and_codecarbon_export_reads_back(
    world: tuple[Settings, StreamJob, Hook], tmp_path: Path,
) -> None:
    s, job, hook = world
    events = ([ev("r1", "alice", i, tags={"project": "vision"}) for i in range(4)]
              + [ev("r2", "bob", i, region="DE", tags={"project": "nlp"}, gpu_count=2)
                 for i in range(6)]
              + [ev("r3", "alice", i, region="US-CAL-CISO", model="bert",
                    gpus=[{"index": 0, "power_w": 100.0}]) for i in range(5)])  # fmt: skip
    push(s, job, events, 15)
    # GPU-hours: 10 s x the GPUs each event reports (r2: gpu_count 2; r3: a one-GPU list)
    gpu_h = {"r1": 0.0, "r2": 6 * 10 * 2 / 3600, "r3": 5 * 10 * 1 / 3600}
    runs = {r["run_id"]: r for r in json.loads(cli(s, hook, "runs", "--json"))}
    assert {k: r["gpu_hours"] for k, r in runs.items()} == pytest.approx(gpu_h)
    bob = {u["user_id"]: u for u in json.loads(cli(s, hook, "users", "--json"))}["bob"]
    assert bob["gpu_hours"] == pytest.approx(gpu_h["r2"])  # the rollups carry it
    since = utc_iso(T0 - timedelta(minutes=1))
    until = utc_iso(T0 + timedelta(hours=1))
    for filt in ([], ["--user", "alice"], ["--tag", "project=nlp"], ["--model", "bert"]):
        runs = json.loads(cli(s, hook, "runs", "--json", "--since", since, "--until", until,
                              *filt))  # fmt: skip
        rep = json.loads(cli(s, hook, "report", "--format", "json", "--since", since,
                             "--until", until, "--by", "tag:project", *filt))  # fmt: skip
        t = rep["totals"]
        assert t["runs"] == len(runs) > 0
        assert t["energy_kwh"] == pytest.approx(sum(r["energy_kwh"] for r in runs))
        assert t["co2_g"] == pytest.approx(sum(r["co2_g"] for r in runs))
        assert t["gpu_hours"] == pytest.approx(sum(r["gpu_hours"] for r in runs))
        assert sum(g["co2_g"] for g in rep["groups"]) == pytest.approx(t["co2_g"])
    assert {g["group"] for g in rep["groups"]} == {"(none)"}  # bert: untagged

    facility = json.loads(cli(s, hook, "report", "--format", "json", "--by", "zone", pue="1.5"))
    t = facility["totals"]
    assert t["facility_co2_g"] == pytest.approx(1.5 * t["co2_g"]) and t["pue"] == 1.5
    assert "USD" in t["cost"] and {"DE", "GB"} <= set(t["unpriced_kwh"])
    page = tmp_path / "report.html"
    cli(s, hook, "report", "--format", "html", "--out", str(page))
    assert page.read_text().count("data:image/png;base64,") == 2

    import pandas as pd

    out = tmp_path / "emissions.csv"
    cli(s, hook, "export", "--format", "codecarbon", "--out", str(out))
    df = pd.read_csv(out)
    runs = {r["run_id"]: r for r in json.loads(cli(s, hook, "runs", "--json"))}
    assert sorted(df["run_id"]) == sorted(runs)
    for _, r in df.iterrows():
        assert r["emissions"] * 1000 == pytest.approx(runs[r["run_id"]]["co2_g"])
        assert r["energy_consumed"] == pytest.approx(runs[r["run_id"]]["energy_kwh"])
    assert set(df.loc[df["run_id"] == "r1", "project_name"]) == {"vision"}

    cold = json.loads(cli(s, hook, "report", "--format", "json", "--source", "cold"))
    hot = json.loads(cli(s, hook, "report", "--format", "json"))
    assert cold["totals"]["runs"] == hot["totals"]["runs"] == 3
    assert cold["totals"]["co2_g"] == pytest.approx(hot["totals"]["co2_g"])
    assert cold["totals"]["energy_kwh"] == pytest.approx(hot["totals"]["energy_kwh"])
    assert cold["totals"]["gpu_hours"] == pytest.approx(hot["totals"]["gpu_hours"])
    assert hot["totals"]["gpu_hours"] == pytest.approx(sum(gpu_h.values()))
