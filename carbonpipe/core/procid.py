"""Which process is "ours": a pid plus its start time, never a pid alone.

A pid can name an unrelated program after the original exited and the number was reused, so
anything that signals, or trusts, a process it learnt about earlier (the background stack's pid
files, the scheduler's guardian, the pause gate) records ``psutil.Process.create_time()`` too,
and counts the process as alive only while both match and it is not an unreaped zombie.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import psutil

# create_time is boot time + start ticks; the kernel's boot time moves a little when the wall
# clock is stepped, so an exact match would disown our own process. Reusing a pid within a
# second would take a whole pid-space wrap in that second.
SAME_START_S = 1.0


def running(proc: psutil.Process) -> bool:
    """Still the same process (psutil checks the create time) and not an unreaped zombie."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass(frozen=True)
class ProcessId:
    """``pid`` started at ``create_time`` (epoch seconds, as psutil reports it)."""

    pid: int
    create_time: float

    @classmethod
    def of(cls, pid: int) -> ProcessId:
        """The identity of the live process ``pid`` (raises ``psutil.Error`` if there is none)."""
        return cls(pid, psutil.Process(pid).create_time())

    def alive(self) -> psutil.Process | None:
        """The process while it still runs as this identity; None once gone, reused or a zombie."""
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) < SAME_START_S and running(proc):
                return proc
        return None
