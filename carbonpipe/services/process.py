"""One process supervisor for everything carbonpipe runs in the background.

Kafka, FerretDB and the apps (feeder, streaming job, dashboard) outlive the command that
started them, so the only link back to them is a pid file. A pid alone is not enough: after a
reboot or a wrap of the pid space the number can name an unrelated program, and signalling
its process group would kill someone else's work. The pid file therefore also records
``psutil.Process.create_time()``; a process counts as ours only when both match, and nothing
is ever signalled without that check (psutil re-checks identity before each signal too).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from carbonpipe.core.errors import CarbonpipeError
from carbonpipe.core.fsutil import atomic_write_text
from carbonpipe.core.fsutil import locked as locked  # one lock for the stack and alerts
from carbonpipe.core.procid import ProcessId
from carbonpipe.core.procid import running as _running


class StackError(CarbonpipeError):
    """A service or app could not be built, started or stopped; the message says what to do."""


@dataclass(frozen=True)
class PidFile:
    """``<pid> <create_time>``: which process we started, robust against pid reuse."""

    path: Path

    def write(self, pid: int) -> None:
        """Record ``pid`` atomically: a concurrent reader sees the old file or the new one."""
        started = ProcessId.of(pid).create_time
        atomic_write_text(self.path, f"{pid} {started!r}\n")

    def read(self) -> tuple[int, float] | None:
        """(pid, create_time), or None when missing, malformed or of the old pid-only form."""
        try:
            pid, started = self.path.read_text().split()
            return int(pid), float(started)
        except (OSError, ValueError):
            return None

    def alive(self) -> psutil.Process | None:
        """Our process if it still runs; otherwise None, and a stale file is removed."""
        rec = self.read()
        if rec is not None and (proc := ProcessId(*rec).alive()) is not None:
            return proc
        with contextlib.suppress(OSError):
            if self.path.exists() and self.read() == rec:  # not rewritten meanwhile
                self.path.unlink()
        return None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def spawn(cmd: list[str], cwd: Path, pid_file: PidFile, log: Path) -> psutil.Process:
    """Start ``cmd`` detached (own session and process group, output appended to ``log``)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        child = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=fh,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    pid_file.write(child.pid)
    return psutil.Process(child.pid)


def poll(probe: Callable[[], bool], timeout_s: float, interval_s: float = 0.5,
         give_up: Callable[[], bool] = lambda: False) -> bool:
    """Call ``probe`` until it returns True (-> True), time runs out or ``give_up()`` (-> False)."""
    deadline = time.monotonic() + timeout_s
    while not probe():
        if give_up() or time.monotonic() > deadline:
            return False
        time.sleep(interval_s)
    return True


def wait_healthy(probe: Callable[[], bool], name: str, log: Path, timeout_s: float,
                 pid_file: PidFile | None = None) -> None:
    """Block until ``probe()``; fail fast, naming the log, if our process dies or time runs out."""
    died = (lambda: pid_file.alive() is None) if pid_file else (lambda: False)
    if poll(probe, timeout_s, give_up=died):
        return
    if died():
        raise StackError(f"{name} exited during start-up; read {log}")
    raise StackError(f"{name} not ready after {timeout_s:.0f}s; read {log}")


def _signal_group(proc: psutil.Process, sig: signal.Signals) -> None:
    """Signal the process group ``proc`` leads (children such as Spark's JVM too), or ``proc``."""
    with contextlib.suppress(psutil.Error, ProcessLookupError):
        if not proc.is_running():  # verifies pid + create time again, just before the signal
            return
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """``psutil.wait_procs`` that also counts unreaped zombies as gone; returns the survivors."""
    deadline = time.monotonic() + timeout_s
    left = procs
    while left:
        _, left = psutil.wait_procs(left, timeout=max(0.0, min(0.2, deadline - time.monotonic())))
        left = [p for p in left if _running(p)]
        if time.monotonic() >= deadline:
            break
    return left


def stop(pid_file: PidFile, grace_s: float = 30.0,
         on_kill: Callable[[], None] = lambda: None) -> psutil.Process | None:
    """SIGTERM our process group, SIGKILL what is left after ``grace_s`` (telling ``on_kill``
    first); remove the pid file.

    Returns the stopped process, or None when the file named no process of ours (then nothing
    is signalled). Descendants are collected first so each is waited for and killed by identity.
    """
    proc = pid_file.alive()
    if proc is None:
        return None
    members = [proc]
    with contextlib.suppress(psutil.Error):
        members += proc.children(recursive=True)
    _signal_group(proc, signal.SIGTERM)
    left = _wait_gone(members, grace_s)
    if left:
        on_kill()
        if proc in left:
            _signal_group(proc, signal.SIGKILL)
        for other in left:
            with contextlib.suppress(psutil.Error):
                other.kill()  # psutil refuses if the pid now names another process
        _wait_gone(left, 5.0)
    pid_file.remove()
    return proc
