"""psutil readers at the edge: the job's process tree and the host counters.

Tree CPU time survives children exiting: a child's time is counted while it lives (per-pid
last totals) and, once reaped, through the root's ``children_user/system``.
"""

from __future__ import annotations

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


class ProcessTree:
    """CPU seconds, pids and RSS of a process and its descendants."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.root = psutil.Process(pid)
        self._last: dict[int, tuple[float, float]] = {}
        self.cpu_delta_s()  # prime

    def alive(self) -> bool:
        try:
            return self.root.is_running() and self.root.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def _procs(self) -> list[psutil.Process]:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return []

    def cpu_delta_s(self) -> float:
        """CPU seconds the tree used since the previous call.

        Own time of live members, plus growth of their reaped-children time, minus what was
        already counted for members that have since gone (their total moves into a parent's
        children_* when reaped). Time a member used in its last partial interval before
        exiting unreaped is lost; bounded by one interval.
        """
        cur: dict[int, tuple[float, float]] = {}
        for p in self._procs():
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            cur[p.pid] = (t.user + t.system, t.children_user + t.children_system)
        own_delta = kids_growth = 0.0
        for pid, (own, kids) in cur.items():
            last_own, last_kids = self._last.get(pid, (0.0, kids))
            own_delta += max(0.0, own - last_own)
            kids_growth += max(0.0, kids - last_kids)
        gone = sum(o + k for pid, (o, k) in self._last.items() if pid not in cur)
        self._last = cur
        return own_delta + max(0.0, kids_growth - gone)

    def pids(self) -> set[int]:
        return {p.pid for p in self._procs()}

    def rss_bytes(self) -> int:
        total = 0
        for p in self._procs():
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
        return total


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
