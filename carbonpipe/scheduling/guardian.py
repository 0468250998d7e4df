"""The guardian: SIGCONTs a paused job's process group once the scheduler is gone.

``--pause-mode signal`` SIGSTOPs the job's whole process group, and only the scheduler ever
sends the SIGCONT. A scheduler that handles SIGTERM/SIGHUP/SIGINT resumes the job itself
(``runner.Job.stop``), but one that is SIGKILLed, OOM-killed or crashes in C cannot: the group
would stay stopped forever, since the job runs in its own session and the kernel's orphaned
process group rule (SIGHUP+SIGCONT) never applies to it.

So before the first SIGSTOP the scheduler starts this small watcher, in a session of its own
(a signal to the scheduler's terminal or process group does not reach it) and outside the job's
group (the SIGSTOP does not freeze it). It polls: when the job's group is empty it exits; when
the scheduler is no longer the process it was (pid *and* start time, so a reused pid does not
count, and an unreaped zombie counts as gone) it SIGCONTs the group, says so on stderr and exits.
The job then runs on without a schedule and ends by itself; its collector sends ``end`` as usual.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from carbonpipe.core.procid import ProcessId

POLL_S = 0.25


def group_exists(pgid: int) -> bool:
    """Any process left in group ``pgid``. The kernel does not hand out a pid still in use as a
    process group id, so the number cannot come to name someone else's group meanwhile."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch(owner: ProcessId, pgid: int, poll_s: float = POLL_S) -> bool:
    """Block until the job's group is gone (False) or ``owner`` died and the group was
    continued (True)."""
    while group_exists(pgid):
        if owner.alive() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGCONT)
            print(f"carbonpipe schedule: the scheduler (pid {owner.pid}) is gone; resumed its "
                  f"paused job (process group {pgid}), which now runs unscheduled",
                  file=sys.stderr, flush=True)  # fmt: skip
            return True
        time.sleep(poll_s)
    return False


def start(pgid: int, poll_s: float = POLL_S) -> subprocess.Popen[bytes]:
    """Start the guardian of group ``pgid`` for this (the scheduler's) process."""
    me = ProcessId.of(os.getpid())
    return subprocess.Popen(
        [sys.executable, "-m", "carbonpipe.scheduling.guardian", str(me.pid),
         repr(me.create_time), str(pgid), str(poll_s)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def main(argv: Sequence[str]) -> int:
    """``python -m carbonpipe.scheduling.guardian OWNER_PID OWNER_START PGID [POLL_S]``."""
    pid, started, pgid, *rest = argv
    watch(ProcessId(int(pid), float(started)), int(pgid), float(rest[0]) if rest else POLL_S)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
