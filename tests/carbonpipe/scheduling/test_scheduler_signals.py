"""A job paused by ``carbonpipe schedule`` is never left frozen (reliability review M2, A9).

Real processes and real signals: ``python -m carbonpipe.cli schedule`` on a synthetic trace at
1800x (one 30-minute slot = 1 s), whose plan runs the first slot, pauses, and resumes about six
slots later. The child records the signals it receives. While it is paused the scheduler gets
SIGTERM/SIGHUP/SIGINT (the child must see SIGCONT, then the stop signal, and the log must say
so) or SIGKILL (the guardian, or in gate mode the gate's owner check, must let it run again).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SCALE = "1800"

# slots 0-2 cheap, then dear for 14 hours, then cheap again. After re-gridding to "now" (a
# fraction f into slot 0) slots 0-2 cost <= 100, slot 3 > 100 for any f > 0, slots 32.. cost
# 100: a two-hour job runs 3 s (time for its child to start even on a loaded machine), pauses
# for about 29 s (the tests signal in there) and would resume at slot 32.
TRACE = [10.0, 10.0, 10.0, 100.0] + [900.0] * 28 + [100.0] * 16

# A child that notes its pid and every signal it gets (SIGCONT included) in argv[1], exits on
# a stop signal, and runs STEP in a loop for at most a minute.
CHILD = r"""
import os, signal, sys, time
from carbonpipe.scheduling import pause_gate
out = sys.argv[1]
def note(what):
    with open(out, "a") as fh:
        fh.write(what + "\n")
def on(signum, frame):
    note(signal.Signals(signum).name)
    if signum != signal.SIGCONT:
        sys.exit(0)
for s in (signal.SIGCONT, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, on)
note(f"pid {os.getpid()}")
end = time.monotonic() + 60
while time.monotonic() < end:
    STEP
    time.sleep(0.02)
"""
SIGNAL_CHILD = CHILD.replace("STEP", "pass")
GATE_CHILD = CHILD.replace(  # cooperative: blocks in the gate, never SIGSTOPped
    "STEP", 'if pause_gate(lambda: note("paused"), poll_s=0.05) > 0: note("resumed")')


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "xx.csv"
    rows = [f"2020-01-01 {h // 2:02d}:{30 * (h % 2):02d}:00,{v}" for h, v in enumerate(TRACE)]
    path.write_text("Time,Carbon Intensity\n" + "\n".join(rows[:48]) + "\n")
    return path


def state(pid: int) -> str:
    """The kernel's process state letter (T: stopped), '' when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def wait_for(probe: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def lines(path: Path) -> list[str]:
    return path.read_text().split("\n")[:-1] if path.exists() else []


class Run:
    """One ``carbonpipe schedule`` process with its child and decision log."""

    def __init__(self, tmp_path: Path, trace: Path, child: str, *extra: str) -> None:
        self.out = tmp_path / "child.txt"
        self.home = tmp_path / "home"
        env = {**os.environ, "CARBONPIPE_HOME": str(self.home)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "carbonpipe.cli", "schedule", "--trace", str(trace),
             "--trace-start", "2020-01-01T00:00:00Z", "--duration", "2h", "--deadline", "23h",
             "--interruptible", "--time-scale", SCALE, "--poll", "24h", "--no-collect", *extra,
             "--",
             sys.executable, "-c", child, str(self.out)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        wait_for(lambda: any(x.startswith("pid ") for x in lines(self.out)), 30, "the child")
        self.child = int(lines(self.out)[0].split()[1])

    def log(self) -> dict[str, Any]:
        (path,) = (self.home / "schedules").glob("*.json")
        log: dict[str, Any] = json.loads(path.read_text())
        return log

    def finish(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        if state(self.child):
            os.killpg(self.child, signal.SIGKILL)


@pytest.fixture
def run(tmp_path: Path, trace: Path) -> Iterator[Callable[..., Run]]:
    made: list[Run] = []

    def start(child: str, *extra: str) -> Run:
        made.append(Run(tmp_path, trace, child, *extra))
        return made[-1]

    yield start
    for r in made:
        r.finish()


@pytest.mark.parametrize(("sig", "sent"), [(signal.SIGTERM, "SIGTERM"),
                                           (signal.SIGHUP, "SIGTERM"),
                                           (signal.SIGINT, "SIGINT")])  # fmt: skip
def test_stop_signal_resumes_then_stops_the_paused_job(
    run: Callable[..., Run], sig: signal.Signals, sent: str
) -> None:
    r = run(SIGNAL_CHILD)
    wait_for(lambda: state(r.child) == "T", 30, "the pause (state T)")
    assert r.log()["status"] == "paused"
    r.proc.send_signal(sig)
    assert r.proc.wait(timeout=10) == 128 + sig
    assert lines(r.out)[1:] == ["SIGCONT", sent]  # resumed first, then asked to stop
    assert state(r.child) == ""
    log = r.log()
    assert log["status"] == "stopped"
    assert log["run"]["signal"] == sig.name and log["run"]["forwarded_signal"] == sent
    assert log["run"]["returncode"] == 0 and len(log["run"]["pauses"]) == 1
    assert r.proc.stderr is not None and f"stopped by {sig.name}" in r.proc.stderr.read().decode()


def test_sigkill_of_the_scheduler_lets_the_job_run_again(run: Callable[..., Run]) -> None:
    r = run(SIGNAL_CHILD)
    wait_for(lambda: state(r.child) == "T", 30, "the pause (state T)")
    r.proc.send_signal(signal.SIGKILL)
    r.proc.wait(timeout=10)
    wait_for(lambda: state(r.child) not in ("T", ""), 30, "the guardian's SIGCONT")
    assert lines(r.out)[1:] == ["SIGCONT"]  # continued, not stopped: it runs on unscheduled
    assert r.log()["status"] == "paused"  # nobody was left to write: the log says so


def test_gate_mode_stop_signal_opens_the_gate_and_stops_the_job(
    run: Callable[..., Run],
) -> None:
    r = run(GATE_CHILD, "--pause-mode", "gate")
    wait_for(lambda: "paused" in lines(r.out), 30, "the gate's pause")
    r.proc.send_signal(signal.SIGTERM)
    assert r.proc.wait(timeout=10) == 128 + signal.SIGTERM
    assert lines(r.out)[1:] in (["paused", "SIGTERM"], ["paused", "resumed", "SIGTERM"])
    log = r.log()
    assert log["status"] == "stopped" and log["run"]["forwarded_signal"] == "SIGTERM"


def test_gate_mode_sigkill_of_the_scheduler_opens_the_gate(run: Callable[..., Run]) -> None:
    r = run(GATE_CHILD, "--pause-mode", "gate")
    wait_for(lambda: "paused" in lines(r.out), 30, "the gate's pause")
    r.proc.send_signal(signal.SIGKILL)
    r.proc.wait(timeout=10)
    wait_for(lambda: "resumed" in lines(r.out), 30, "the gate to read 'run'")
    gate = json.loads(next((r.home / "schedules").glob("*.gate")).read_text())
    assert gate["state"] == "pause"  # the file still says pause: its dead owner voids it


STUBBORN_CHILD = SIGNAL_CHILD.replace("    if signum != signal.SIGCONT:\n        sys.exit(0)\n",
                                      "")


def test_a_second_signal_kills_a_job_that_ignores_the_first(run: Callable[..., Run]) -> None:
    r = run(STUBBORN_CHILD)
    wait_for(lambda: state(r.child) == "T", 30, "the pause (state T)")
    r.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "SIGTERM" in lines(r.out), 30, "the forwarded SIGTERM")
    assert r.proc.poll() is None  # still waiting out the grace period for the job
    r.proc.send_signal(signal.SIGINT)  # impatient: the group is SIGKILLed at once
    assert r.proc.wait(timeout=10) == 128 + signal.SIGTERM
    wait_for(lambda: state(r.child) == "", 30, "the job's end")
    assert r.log()["run"]["returncode"] == -signal.SIGKILL


def test_a_signal_before_the_start_cancels_without_running(tmp_path: Path) -> None:
    trace = tmp_path / "late.csv"
    rows = [f"2020-01-01 {h // 2:02d}:{30 * (h % 2):02d}:00,{900 if h < 16 else 10}"
            for h in range(48)]  # fmt: skip
    trace.write_text("Time,Carbon Intensity\n" + "\n".join(rows) + "\n")
    r = Run.__new__(Run)
    r.out, r.home = tmp_path / "child.txt", tmp_path / "home"
    r.proc = subprocess.Popen(
        [sys.executable, "-m", "carbonpipe.cli", "schedule", "--trace", str(trace),
         "--trace-start", "2020-01-01T00:00:00Z", "--duration", "30m", "--deadline", "10h",
         "--time-scale", SCALE, "--poll", "24h", "--no-collect", "--",
         sys.executable, "-c", SIGNAL_CHILD, str(r.out)],
        env={**os.environ, "CARBONPIPE_HOME": str(r.home)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: any(r.home.glob("schedules/*.json")) and r.log()["status"] == "waiting",
                 10, "the wait for the first slot")  # fmt: skip
        r.proc.send_signal(signal.SIGTERM)
        assert r.proc.wait(timeout=10) == 128 + signal.SIGTERM
    finally:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()
    log = r.log()
    assert log["status"] == "cancelled" and log["run"]["signal"] == "SIGTERM"
    assert log["run"]["started_at"] is None and log["run"]["forwarded_signal"] is None
    assert not r.out.exists()
