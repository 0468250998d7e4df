"""Process control: wait for the chosen slots, run the command, pause/resume, re-plan.

The job runs in its own process group (``start_new_session``) so SIGSTOP/SIGCONT reach every
child (dataloader workers, the collector's child). Time comes from an injectable :class:`Clock`:
:class:`ScaledClock` runs a day of 30-minute slots in seconds for tests and demos.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from carbonpipe.core.timeutil import utc_iso_s
from carbonpipe.scheduling.gate import DECISION_ENV, GATE_ENV, write_gate
from carbonpipe.scheduling.policies import Plan


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
        }


Segments = list[tuple[float, float]]
Replanner = Callable[[float, float], "Plan | None"]
"""(now, remaining work s) -> a new plan when a fresher forecast changed it, else None."""


def plan_segments(plan: Plan) -> Segments:
    return [(a.timestamp(), b.timestamp()) for a, b in plan.segments]


class Job:
    """One scheduled command: start, stop/continue its process group, or flip the gate."""

    def __init__(self, cmd: Sequence[str], *, env: dict[str, str], pause_mode: str,
                 gate_path: Path | None) -> None:
        self.cmd, self.env, self.pause_mode, self.gate_path = list(cmd), env, pause_mode, gate_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

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
            os.killpg(self.proc.pid, signal.SIGSTOP)
        elif self.gate_path is not None:
            write_gate(self.gate_path, "pause")
        self.paused = True

    def resume(self) -> None:
        if self.proc is None or not self.paused:
            return
        if self.pause_mode == "signal":
            os.killpg(self.proc.pid, signal.SIGCONT)
        elif self.gate_path is not None:
            write_gate(self.gate_path, "run")
        self.paused = False

    def kill(self) -> None:
        if self.proc is not None and not self.done():
            self.resume()
            os.killpg(self.proc.pid, signal.SIGTERM)


def run_plan(
    plan: Plan, cmd: Sequence[str], *, clock: Clock | None = None, decision_id: str = "",
    interruptible: bool = False, pause_mode: str = "signal", gate_path: Path | None = None,
    replan: Replanner | None = None, poll_s: float = 900.0,
    on_update: Callable[[RunRecord], None] | None = None,
) -> RunRecord:
    """Wait for the plan's segments, run ``cmd``, pause between segments if interruptible.

    Before the start (and, when interruptible, between segments) ``replan`` is polled every
    ``poll_s`` (clock seconds). A job that outlives its last segment keeps running (overrun).
    """
    clock = clock or SystemClock()
    env = dict(os.environ)
    env[DECISION_ENV] = decision_id
    if gate_path is not None:
        env[GATE_ENV] = str(gate_path)
    job = Job(cmd, env=env, pause_mode=pause_mode, gate_path=gate_path)
    rec = RunRecord()
    segs = plan_segments(plan)
    planned_end = segs[-1][1]
    total_work = plan.duration_s
    next_poll = clock.now() + poll_s
    run_since: float | None = None
    pause_since: float | None = None
    try:
        while True:
            now = clock.now()
            if job.done():
                break
            segs = [s for s in segs if s[1] > now + 1e-6]
            in_seg = bool(segs) and segs[0][0] <= now + 1e-6
            if job.proc is None and (in_seg or not segs):
                job.start()
                rec.started_at, run_since = now, now
            elif job.proc is not None and in_seg and job.paused:
                job.resume()
                if pause_since is not None:
                    rec.pauses.append([pause_since, now])
                pause_since, run_since = None, now
            elif job.proc is not None and not in_seg and not job.paused and interruptible and segs:
                job.pause()
                rec.run_s += now - (run_since or now)
                pause_since, run_since = now, None
            can_replan = replan is not None and (job.proc is None or (interruptible and job.paused))
            if can_replan and now >= next_poll:
                next_poll = now + poll_s
                remaining = total_work - rec.run_s
                new = replan(now, remaining) if replan else None
                if new is not None:
                    segs = plan_segments(new)
                    planned_end = segs[-1][1]
                    rec.replans.append({"at": utc_iso_s(datetime.fromtimestamp(now, timezone.utc)),
                                        "remaining_s": remaining, "plan": new.to_dict()})
                    if on_update:
                        on_update(rec)
                    continue
            events = [s for seg in segs for s in seg if s > now]
            if can_replan:
                events.append(next_poll)
            until = min(events) if events else now + clock.tick_s
            clock.sleep(min(max(until - now, 0.0), clock.tick_s))
    except BaseException:
        job.kill()
        raise
    end = clock.now()
    rec.ended_at = end
    if run_since is not None:
        rec.run_s += end - run_since
    if pause_since is not None:
        rec.pauses.append([pause_since, end])
    rec.overrun_s = max(0.0, end - planned_end)
    assert job.proc is not None
    rec.returncode = job.proc.returncode
    return rec
