"""Process control: wait for the chosen slots, run the command, pause/resume, re-plan.

The job runs in its own process group (``start_new_session``) so SIGSTOP/SIGCONT reach every
child (dataloader workers, the collector's child). Time comes from an injectable :class:`Clock`:
:class:`ScaledClock` runs a day of 30-minute slots in seconds for tests and demos.

A paused job is never left frozen:

- SIGTERM, SIGHUP or SIGINT to the scheduler: the job is resumed (SIGCONT to its group, or the
  gate set to 'run'), then asked to stop: SIGTERM and SIGINT are forwarded as they are, SIGHUP
  as SIGTERM (the job is not on the scheduler's terminal, and SIGTERM is the stop request that
  the collector and training frameworks handle: the collector sends its ``end`` event). After
  ``stop_grace_s`` (or at a second signal) the group is SIGKILLed. The record says which
  signal; ``carbonpipe schedule`` logs it and exits 128 + its number.
- The scheduler SIGKILLed or crashed: in signal mode the guardian (``guardian.py``), started
  before the first SIGSTOP, SIGCONTs the group; in gate mode a 'pause' written by a dead
  scheduler reads as 'run' (``gate.py``). The job then runs to its end unscheduled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import psutil

from carbonpipe.core.timeutil import utc_iso_s
from carbonpipe.scheduling import guardian
from carbonpipe.scheduling.gate import DECISION_ENV, GATE_ENV, write_gate
from carbonpipe.scheduling.policies import Plan

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
FORWARDED = {signal.SIGHUP: signal.SIGTERM}
"""What the job gets for each stop signal the scheduler receives (default: the same one)."""
STOP_GRACE_S = 30.0
"""Seconds a stopped job has to finish (collector's ``end`` event, a checkpoint) before SIGKILL."""


class Clock(Protocol):
    """Wall time (epoch seconds, possibly virtual) and a sleep in the same units."""

    tick_s: float

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    tick_s = 1.0

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class ScaledClock:
    """Virtual time running ``scale`` times faster than real time, from ``start`` (epoch)."""

    def __init__(self, scale: float, start: float | None = None) -> None:
        self.scale = float(scale)
        self.v0 = time.time() if start is None else float(start)
        self.r0 = time.monotonic()
        self.tick_s = 0.01 * self.scale

    def now(self) -> float:
        return self.v0 + (time.monotonic() - self.r0) * self.scale

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.scale)


def collector_command(
    cmd: Sequence[str], *, run_id: str, user: str, model: str, decision_id: str
) -> list[str]:
    """CMD wrapped in ``carbonpipe collect`` and tagged with the decision (one place to adapt)."""
    return [sys.executable, "-m", "carbonpipe.cli", "collect", "--run-id", run_id,
            "--user", user, "--model", model, "--tag", f"schedule_decision_id={decision_id}",
            "--", *cmd]


@dataclass
class RunRecord:
    """What actually happened, appended to the decision log."""

    started_at: float | None = None
    ended_at: float | None = None
    returncode: int | None = None
    pauses: list[list[float]] = field(default_factory=list)
    replans: list[dict[str, Any]] = field(default_factory=list)
    overrun_s: float = 0.0
    run_s: float = 0.0
    signal: str | None = None  # the stop signal the scheduler received, e.g. "SIGTERM"
    forwarded: str | None = None  # what the job got for it (None: it had not started)
    paused: bool = False  # now, for the log's status; the history is ``pauses``

    def to_dict(self) -> dict[str, Any]:
        def ts(x: float | None) -> str | None:
            return None if x is None else utc_iso_s(datetime.fromtimestamp(x, tz=timezone.utc))

        return {
            "started_at": ts(self.started_at), "ended_at": ts(self.ended_at),
            "wall_s": None if self.started_at is None or self.ended_at is None
            else self.ended_at - self.started_at,
            "run_s": self.run_s, "returncode": self.returncode,
            "pauses": [[ts(a), ts(b)] for a, b in self.pauses],
            "replans": self.replans, "overrun_s": self.overrun_s,
            "signal": self.signal, "forwarded_signal": self.forwarded,
        }


Segments = list[tuple[float, float]]
Replanner = Callable[[float, float], "Plan | None"]
"""(now, remaining work s) -> a new plan when a fresher forecast changed it, else None."""


def plan_segments(plan: Plan) -> Segments:
    return [(a.timestamp(), b.timestamp()) for a, b in plan.segments]


class StopRequest:
    """The stop signals received so far; set from a signal handler, read by the run loop.

    The handler only records: raising from it could land between ``Popen`` and recording the
    child, leaving a job nobody tracks. The loop sleeps at most one clock tick (<= 1 s real), so
    it notices within a second.
    """

    def __init__(self) -> None:
        self.signals: list[int] = []

    def __call__(self, signum: int, frame: object = None) -> None:
        self.signals.append(signum)

    @property
    def first(self) -> int | None:
        return self.signals[0] if self.signals else None


@contextlib.contextmanager
def stop_signals(request: StopRequest) -> Iterator[None]:
    """Route SIGTERM/SIGHUP/SIGINT to ``request`` for the block (main thread only: Python
    installs handlers nowhere else; from another thread the caller owns the signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, request) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


class Job:
    """One scheduled command: start, stop/continue its process group, or flip the gate."""

    def __init__(self, cmd: Sequence[str], *, env: dict[str, str], pause_mode: str,
                 gate_path: Path | None) -> None:
        self.cmd, self.env, self.pause_mode, self.gate_path = list(cmd), env, pause_mode, gate_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False
        self.guardian: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.gate_path is not None:
            write_gate(self.gate_path, "run")
        self.proc = subprocess.Popen(self.cmd, env=self.env, start_new_session=True)

    def done(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def pause(self) -> None:
        if self.proc is None or self.paused or self.done():
            return
        if self.pause_mode == "signal":
            if self.guardian is None:  # before the first SIGSTOP: never a stop nobody undoes
                self.guardian = guardian.start(self.proc.pid)
            os.killpg(self.proc.pid, signal.SIGSTOP)
        elif self.gate_path is not None:
            write_gate(self.gate_path, "pause")
        self.paused = True

    def resume(self) -> None:
        if self.proc is None or not self.paused:
            return
        self._continue()
        self.paused = False

    def _continue(self) -> None:
        if self.proc is None:
            return
        if self.pause_mode == "signal":
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGCONT)
        elif self.gate_path is not None:
            write_gate(self.gate_path, "run")

    def _members(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        with contextlib.suppress(psutil.Error):
            leader = psutil.Process(self.proc.pid)
            return [leader, *leader.children(recursive=True)]
        return []

    def _wait_continued(self, timeout_s: float = 2.0) -> None:
        """Until no process of the job is stopped, so the SIGCONT is seen before the stop
        signal (a Python job runs pending handlers in signal-number order: TERM before CONT)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stopped = []
            for p in self._members():
                with contextlib.suppress(psutil.Error):
                    if p.status() == psutil.STATUS_STOPPED:
                        stopped.append(p)
            if not stopped:
                time.sleep(0.1)  # let the woken processes run their SIGCONT handlers
                return
            time.sleep(0.02)

    def stop(self, signum: int, grace_s: float = STOP_GRACE_S,
             hurry: Callable[[], bool] = lambda: False) -> int | None:
        """Resume the job, send it the stop signal for ``signum``, SIGKILL the group after
        ``grace_s`` or when ``hurry()``. Returns the signal the job got (None: none was sent,
        as it had not started or had already ended)."""
        if self.proc is None:
            return None
        if self.done():  # it ended by itself as the signal came: nothing to forward
            return None
        sent = FORWARDED.get(signal.Signals(signum), signal.Signals(signum))
        self._continue()
        self.paused = False
        if self.pause_mode == "signal":
            self._wait_continued()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sent)
        deadline = time.monotonic() + grace_s
        while not self.done():
            if hurry() or time.monotonic() >= deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                break
            time.sleep(0.05)
        return int(sent)

    def kill(self) -> None:
        """The scheduler itself failed: resume and SIGTERM the job without waiting for it."""
        if self.proc is not None and not self.done():
            self._continue()
            self.paused = False
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def close(self) -> None:
        """End the guardian: the scheduler is alive and the job no longer needs one."""
        if self.guardian is not None and self.guardian.poll() is None:
            self.guardian.terminate()  # our unreaped child: the pid cannot have been reused
            self.guardian.wait()


def run_plan(
    plan: Plan, cmd: Sequence[str], *, clock: Clock | None = None, decision_id: str = "",
    interruptible: bool = False, pause_mode: str = "signal", gate_path: Path | None = None,
    replan: Replanner | None = None, poll_s: float = 900.0,
    on_update: Callable[[RunRecord], None] | None = None, stop_grace_s: float = STOP_GRACE_S,
) -> RunRecord:
    """Wait for the plan's segments, run ``cmd``, pause between segments if interruptible.

    Before the start (and, when interruptible, between segments) ``replan`` is polled every
    ``poll_s`` (clock seconds). A job that outlives its last segment keeps running (overrun).
    ``on_update`` sees the record at the start, each pause, resume and re-plan. SIGTERM, SIGHUP
    or SIGINT ends the wait: the job is resumed and stopped (:meth:`Job.stop`), and the record
    returned with ``signal`` set (``returncode`` None when the job had not started).
    """
    clock = clock or SystemClock()
    env = dict(os.environ)
    env[DECISION_ENV] = decision_id
    if gate_path is not None:
        env[GATE_ENV] = str(gate_path)
    job = Job(cmd, env=env, pause_mode=pause_mode, gate_path=gate_path)
    loop = _Loop(job, RunRecord(), clock, plan_segments(plan), plan.duration_s, interruptible,
                 replan, poll_s, on_update or (lambda rec: None))
    stop = StopRequest()
    try:
        with stop_signals(stop):
            loop.run(stop)
            if stop.first is not None:
                loop.rec.signal = signal.Signals(stop.first).name
                sent = job.stop(stop.first, stop_grace_s, hurry=lambda: len(stop.signals) > 1)
                loop.rec.forwarded = None if sent is None else signal.Signals(sent).name
    except BaseException:
        job.kill()
        raise
    finally:
        job.close()
    return loop.finish()


class _Loop:
    """The run loop's state: where the plan is, since when the job runs or is paused."""

    def __init__(self, job: Job, rec: RunRecord, clock: Clock, segs: Segments,
                 total_work: float, interruptible: bool, replan: Replanner | None,
                 poll_s: float, on_update: Callable[[RunRecord], None]) -> None:
        self.job, self.rec, self.clock, self.segs = job, rec, clock, segs
        self.total_work, self.interruptible, self.replan = total_work, interruptible, replan
        self.poll_s, self.on_update = poll_s, on_update
        self.planned_end = segs[-1][1]
        self.next_poll = clock.now() + poll_s
        self.run_since: float | None = None
        self.pause_since: float | None = None

    def run(self, stop: StopRequest) -> None:
        """Until the job ends or a stop signal arrives."""
        job, rec, clock = self.job, self.rec, self.clock
        while True:
            now = clock.now()
            if job.done() or stop.first is not None:
                return
            self.segs = segs = [s for s in self.segs if s[1] > now + 1e-6]
            in_seg = bool(segs) and segs[0][0] <= now + 1e-6
            if job.proc is None and (in_seg or not segs):
                job.start()
                rec.started_at, self.run_since = now, now
                self.on_update(rec)
            elif job.proc is not None and in_seg and job.paused:
                job.resume()
                rec.paused = False
                if self.pause_since is not None:
                    rec.pauses.append([self.pause_since, now])
                self.pause_since, self.run_since = None, now
                self.on_update(rec)
            elif (job.proc is not None and not in_seg and not job.paused and self.interruptible
                  and segs):
                job.pause()
                rec.paused = True
                rec.run_s += now - (self.run_since or now)
                self.pause_since, self.run_since = now, None
                self.on_update(rec)
            can_replan = self.replan is not None and (
                job.proc is None or (self.interruptible and job.paused))
            if can_replan and now >= self.next_poll and self._replan(now):
                continue
            events = [s for seg in self.segs for s in seg if s > now]
            if can_replan:
                events.append(self.next_poll)
            until = min(events) if events else now + clock.tick_s
            clock.sleep(min(max(until - now, 0.0), clock.tick_s))

    def _replan(self, now: float) -> bool:
        self.next_poll = now + self.poll_s
        remaining = self.total_work - self.rec.run_s
        new = self.replan(now, remaining) if self.replan else None
        if new is None:
            return False
        self.segs = plan_segments(new)
        self.planned_end = self.segs[-1][1]
        self.rec.replans.append({"at": utc_iso_s(datetime.fromtimestamp(now, timezone.utc)),
                                 "remaining_s": remaining, "plan": new.to_dict()})
        self.on_update(self.rec)
        return True

    def finish(self) -> RunRecord:
        """Close the open run or pause at the end (job done, or stopped by a signal)."""
        rec, end = self.rec, self.clock.now()
        rec.ended_at = end
        if self.run_since is not None:
            rec.run_s += end - self.run_since
        if self.pause_since is not None:
            rec.pauses.append([self.pause_since, end])
        rec.overrun_s = max(0.0, end - self.planned_end)
        rec.returncode = None if self.job.proc is None else self.job.proc.returncode
        return rec
