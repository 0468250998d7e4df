"""psutil readers at the edge: the job's process tree and the host counters.

Tree CPU time survives children exiting: a child's time is counted while it lives (per-pid
last totals) and, once reaped, through the root's ``children_user/system``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil


@dataclass
class HostCpu:
    busy_s: float
    total_s: float


def host_cpu() -> HostCpu:
    """Host CPU seconds summed over all CPUs; busy = all but idle and iowait."""
    t = psutil.cpu_times()
    total = sum(t)
    idle = t.idle + getattr(t, "iowait", 0.0)
    return HostCpu(total - idle, total)


def _children_proc(pid: int) -> list[int] | None:
    """Direct children from /proc/<pid>/task/*/children (cheap); None where unsupported."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    out: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fh:
                out.extend(int(x) for x in fh.read().split())
        except FileNotFoundError:
            continue  # thread exited
        except OSError:
            return None
    return out


class ProcessTree:
    """CPU seconds, pids and RSS of a process and its descendants, one /proc walk a sample.

    Descendants come from /proc/<pid>/task/*/children where the kernel has it (a few reads),
    else from psutil (which scans every process on the host).
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.root = psutil.Process(pid)
        self._cache: dict[int, psutil.Process] = {pid: self.root}
        self._last: dict[int, tuple[float, float]] = {}
        self._pids: set[int] = {pid}
        self._rss = 0
        self.cpu_delta_s()  # prime

    def alive(self) -> bool:
        try:
            return self.root.is_running() and self.root.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def _walk(self) -> list[int]:
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            kids = _children_proc(pid)
            if kids is None:  # no /proc children files: let psutil do the whole tree
                try:
                    return [self.pid, *(c.pid for c in self.root.children(recursive=True))]
                except psutil.Error:
                    return pids
            todo.extend(kids)
        return pids

    def _procs(self) -> list[psutil.Process]:
        out = []
        for pid in self._walk():
            proc = self._cache.get(pid)
            if proc is None:
                try:
                    proc = self._cache[pid] = psutil.Process(pid)
                except psutil.Error:
                    continue
            out.append(proc)
        live = {p.pid for p in out}
        for gone in set(self._cache) - live - {self.pid}:
            del self._cache[gone]
        return out

    def cpu_delta_s(self) -> float:
        """CPU seconds the tree used since the previous call (also refreshes pids and RSS).

        Own time of live members, plus growth of their reaped-children time, minus what was
        already counted for members that have since gone (their total moves into a parent's
        children_* when reaped). Time a member used in its last partial interval before
        exiting unreaped is lost; bounded by one interval.
        """
        cur: dict[int, tuple[float, float]] = {}
        rss = 0
        for p in self._procs():
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    rss += p.memory_info().rss
            except psutil.Error:
                continue
            cur[p.pid] = (t.user + t.system, t.children_user + t.children_system)
        own_delta = kids_growth = 0.0
        for pid, (own, kids) in cur.items():
            last_own, last_kids = self._last.get(pid, (0.0, kids))
            own_delta += max(0.0, own - last_own)
            kids_growth += max(0.0, kids - last_kids)
        gone = sum(o + k for pid, (o, k) in self._last.items() if pid not in cur)
        self._last, self._pids, self._rss = cur, set(cur), rss
        return own_delta + max(0.0, kids_growth - gone)

    def pids(self) -> set[int]:
        """Members seen by the last ``cpu_delta_s``."""
        return set(self._pids)

    def rss_bytes(self) -> int:
        """Resident memory of the members seen by the last ``cpu_delta_s``."""
        return self._rss


class HostIo:
    """Disk and network byte counters as deltas since the previous call."""

    def __init__(self) -> None:
        self._prev = self._read()

    @staticmethod
    def _read() -> tuple[int, int, int, int]:
        d = psutil.disk_io_counters()
        n = psutil.net_io_counters()
        return (
            d.read_bytes if d else 0,
            d.write_bytes if d else 0,
            n.bytes_sent if n else 0,
            n.bytes_recv if n else 0,
        )

    def delta(self) -> tuple[int, int, int, int]:
        cur = self._read()
        out = tuple(max(0, c - p) for c, p in zip(cur, self._prev, strict=True))
        self._prev = cur
        return out  # type: ignore[return-value]


def host_used_bytes() -> int:
    vm = psutil.virtual_memory()
    return int(vm.total - vm.available)
