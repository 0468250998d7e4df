"""The runner really stops and resumes a child process, on a clock 1800x faster than real.

One 30-minute forecast slot lasts 1 s of real time. The child counts its own *running* time
(gaps between ticks are capped), so its work is 3 s of CPU-awake time whatever the pauses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from carbonpipe.scheduling.policies import Forecast, Plan, best_window, interruptible
from carbonpipe.scheduling.runner import ScaledClock, collector_command, run_plan

SCALE = 1800.0
STEP = 1800
V0 = datetime(2020, 6, 1, tzinfo=timezone.utc)

CHILD = r"""
import sys, time
out = open(sys.argv[1], "a")
work, last, acc = float(sys.argv[2]), time.monotonic(), 0.0
while acc < work:
    time.sleep(0.01)
    now = time.monotonic()
    acc += min(now - last, 0.05)
    last = now
    out.write(f"{time.time()}\n"); out.flush()
"""

GATE_CHILD = r"""
import sys, time
from carbonpipe.scheduling import pause_gate
out = open(sys.argv[1], "a")
def ckpt():
    out.write("ckpt\n"); out.flush()
t_end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < t_end:
    t_end += pause_gate(ckpt, poll_s=0.02)
    time.sleep(0.01)
    out.write(f"{time.time()}\n"); out.flush()
"""


def forecast(values: list[float]) -> Forecast:
    starts = np.datetime64(V0.replace(tzinfo=None), "s") + np.arange(len(values)) * \
        np.timedelta64(STEP, "s")
    return Forecast("XX", starts, np.asarray(values, dtype=np.float64), STEP)


def real_time(clock: ScaledClock, virtual: datetime) -> float:
    """Wall-clock epoch at which the scaled clock shows ``virtual``."""
    return time.time() - (clock.now() - virtual.timestamp()) / SCALE


def ticks(path: Path) -> np.ndarray:
    return np.array([float(x) for x in path.read_text().split() if x != "ckpt"])


def test_interruptible_child_is_stopped_and_resumed(tmp_path: Path) -> None:
    plan = interruptible(forecast([300, 100, 400, 100, 100, 300, 300, 300]), 3 * STEP, 6 * STEP)
    assert [(a.timestamp() - V0.timestamp()) / STEP for a, _ in plan.segments] == [1, 3]
    clock = ScaledClock(SCALE, start=V0.timestamp())
    out = tmp_path / "ticks.txt"
    rec = run_plan(plan, [sys.executable, "-c", CHILD, str(out), "3.0"], clock=clock,
                   decision_id="d-test", interruptible=True, poll_s=1e9)
    assert rec.returncode == 0
    t = ticks(out)
    seg1_end = real_time(clock, plan.segments[0][1])
    seg2_start = real_time(clock, plan.segments[1][0])
    gaps = np.diff(t)
    big = int(np.argmax(gaps))
    # one pause, of about one slot (1 s real), placed where the plan says
    assert gaps[big] == pytest.approx(1.0, abs=0.3)
    assert t[big] == pytest.approx(seg1_end, abs=0.25)
    assert t[big + 1] == pytest.approx(seg2_start, abs=0.25)
    assert np.sort(gaps)[-2] < 0.3
    # no tick before the first chosen slot; total wall time = span of the chosen slots (3+1 s)
    assert t[0] >= real_time(clock, plan.segments[0][0]) - 0.05
    assert t[-1] - t[0] == pytest.approx(
        (plan.end - plan.start).total_seconds() / SCALE, abs=0.4)
    assert len(rec.pauses) == 1
    assert rec.run_s / SCALE == pytest.approx(3.0, abs=0.4)


def test_gate_mode_pauses_cooperatively_with_checkpoint(tmp_path: Path) -> None:
    plan = interruptible(forecast([100, 400, 100, 400, 400]), 2 * STEP, 4 * STEP)
    clock = ScaledClock(SCALE, start=V0.timestamp())
    out = tmp_path / "ticks.txt"
    gate = tmp_path / "gate.json"
    rec = run_plan(plan, [sys.executable, "-c", GATE_CHILD, str(out), "1.9"], clock=clock,
                   interruptible=True, pause_mode="gate", gate_path=gate, poll_s=1e9)
    assert rec.returncode == 0
    lines = out.read_text().split()
    assert lines.count("ckpt") == 1
    gaps = np.diff(ticks(out))
    assert gaps.max() == pytest.approx(1.0, abs=0.35)


def test_contiguous_job_waits_for_its_window(tmp_path: Path) -> None:
    plan = best_window(forecast([400, 400, 100, 100, 400]), 1 * STEP, 5 * STEP)
    clock = ScaledClock(SCALE, start=V0.timestamp())
    out = tmp_path / "ticks.txt"
    rec = run_plan(plan, [sys.executable, "-c", CHILD, str(out), "0.5"], clock=clock)
    t = ticks(out)
    assert t[0] == pytest.approx(real_time(clock, plan.start), abs=0.25)
    assert rec.pauses == [] and rec.returncode == 0


def test_replan_on_fresher_forecast_moves_the_start(tmp_path: Path) -> None:
    plan = best_window(forecast([400, 400, 400, 400, 100, 400]), 1 * STEP, 6 * STEP)
    assert plan.start.timestamp() - V0.timestamp() == 4 * STEP
    fresher = best_window(forecast([400, 400, 50, 400, 100, 400]), 1 * STEP, 6 * STEP)
    calls: list[float] = []

    def replan(now: float, remaining: float) -> Plan | None:
        calls.append(now)
        return replace(fresher, duration_s=remaining) if len(calls) == 1 else None

    clock = ScaledClock(SCALE, start=V0.timestamp())
    out = tmp_path / "ticks.txt"
    rec = run_plan(plan, [sys.executable, "-c", CHILD, str(out), "0.3"], clock=clock,
                   replan=replan, poll_s=STEP)
    assert len(rec.replans) == 1
    assert ticks(out)[0] == pytest.approx(real_time(clock, fresher.start), abs=0.25)


def test_collector_command_tags_the_decision() -> None:
    cmd = collector_command(["python", "train.py"], run_id="r1", user="u", model="m",
                            decision_id="D1")
    assert cmd[1:4] == ["-m", "carbonpipe.cli", "collect"]
    assert "schedule_decision_id=D1" in cmd and cmd[-3:] == ["--", "python", "train.py"]


def test_lightning_callback_obeys_the_gate_without_lightning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without lightning installed: no gate -> no-op; a paused gate -> checkpoint, then block
    until the scheduler writes ``run``."""
    import threading

    from carbonpipe.scheduling import CarbonPauseCallback
    from carbonpipe.scheduling.gate import GATE_ENV, write_gate

    class Trainer:
        def __init__(self) -> None:
            self.saved: list[str] = []

        def save_checkpoint(self, path: str) -> None:
            self.saved.append(path)

    trainer = Trainer()
    cb = CarbonPauseCallback(checkpoint_path=str(tmp_path / "pause.ckpt"), poll_s=0.01)
    monkeypatch.delenv(GATE_ENV, raising=False)
    cb.on_train_batch_end(trainer, None, None, None, 0)
    assert trainer.saved == []  # no scheduler: nothing happens

    gate = tmp_path / "gate.json"
    write_gate(gate, "pause")
    monkeypatch.setenv(GATE_ENV, str(gate))
    resumed = threading.Event()

    def step() -> None:
        cb.on_train_batch_end(trainer, None, None, None, 1)
        resumed.set()

    worker = threading.Thread(target=step)
    worker.start()
    assert not resumed.wait(0.3)  # paused: the training step does not return
    assert trainer.saved == [str(tmp_path / "pause.ckpt")]  # checkpointed once on pause
    write_gate(gate, "run")
    worker.join(10)
    assert resumed.is_set() and trainer.saved == [str(tmp_path / "pause.ckpt")]


def test_cli_runs_command_at_chosen_time_and_logs(tmp_path: Path, traces_dir: Path) -> None:
    root = traces_dir
    marker = tmp_path / "env.txt"
    env = {**os.environ, "CARBONPIPE_HOME": str(tmp_path / "home")}
    child = ("import os,sys; open(sys.argv[1],'w').write("
             "os.environ['CARBONPIPE_SCHEDULE_DECISION_ID'])")
    proc = subprocess.run(
        [sys.executable, "-m", "carbonpipe.cli", "schedule", "--trace",
         str(root / "gb-2020.csv"), "--duration", "30m", "--deadline", "3h", "--power-w", "300",
         "--time-scale", "7200", "--no-collect", "--", sys.executable, "-c", child, str(marker)],
        env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    logs = list((tmp_path / "home" / "schedules").glob("*.json"))
    assert len(logs) == 1
    log = json.loads(logs[0].read_text())
    assert log["status"] == "done" and log["run"]["returncode"] == 0
    assert marker.read_text() == log["decision_id"]
    assert log["forecasts"][0]["provenance"]["perfect_foresight"] is True
    assert log["plan"]["expected_g"] > 0 and log["plan"]["reduction_pct"] >= 0
    started = datetime.fromisoformat(log["run"]["started_at"].replace("Z", "+00:00"))
    planned = datetime.fromisoformat(log["plan"]["start"].replace("Z", "+00:00"))
    assert abs((started - planned).total_seconds()) < 0.3 * 7200
