"""/proc readers at the edge: the job's process tree and the host counters.

Read with raw syscalls and parsed here (psutil only as the fallback off Linux): this runs
every second for the whole training run, so its cost is the collector's overhead.
Tree CPU time survives children exiting: a child's time is counted while it lives (per-pid
last totals) and, once reaped, through its parent's cutime/cstime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # ticks per second
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
FULL_WALK_EVERY = 10  # samples between walks over every thread's children list


def read_bytes(path: str) -> bytes:
    """Whole small /proc file with raw syscalls ("" when gone): the sampling loop's hot path
    reads a handful of these each second, and buffered text I/O costs several times more."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return b""
    try:
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except OSError:
        return b""
    finally:
        os.close(fd)


@dataclass
class HostCpu:
    busy_s: float
    total_s: float


def parse_uptime(data: bytes, ncpu: int) -> HostCpu:
    """Host CPU seconds from /proc/uptime (proc(5)): uptime x online CPUs, and the idle
    seconds summed over CPUs. Busy = the rest (iowait counts as busy here).

    Chosen over /proc/stat because the kernel builds that file from every IRQ counter of
    every CPU: ~80 us a read here against ~10 us, paid every second for the whole run.
    """
    up, idle = (float(x) for x in data.split()[:2])
    total = up * ncpu
    return HostCpu(max(0.0, total - idle), total)


NCPU = os.cpu_count() or 1  # online CPUs (sysconf _SC_NPROCESSORS_ONLN)


def host_cpu() -> HostCpu:
    """Host CPU seconds summed over all CPUs."""
    data = read_bytes("/proc/uptime")
    if not data:  # not Linux: psutil knows the platform
        t = psutil.cpu_times()
        total = sum(t)
        return HostCpu(total - t.idle - getattr(t, "iowait", 0.0), total)
    return parse_uptime(data, NCPU)


@dataclass(frozen=True)
class ProcStat:
    state: str
    start: int  # clock ticks after boot: tells a reused pid apart
    own_s: float  # utime + stime
    kids_s: float  # cutime + cstime (waited-for children)
    rss: int  # bytes


def parse_pid_stat(data: bytes) -> ProcStat | None:
    """/proc/<pid>/stat (proc(5)); the command name may hold spaces and parentheses."""
    if not data:
        return None
    f = data.rsplit(b")", 1)[1].split()  # f[k] is field k+3
    try:
        return ProcStat(
            state=f[0].decode(),
            start=int(f[19]),
            own_s=(int(f[11]) + int(f[12])) / CLK_TCK,
            kids_s=(int(f[13]) + int(f[14])) / CLK_TCK,
            rss=int(f[21]) * PAGE,
        )
    except (IndexError, ValueError):
        return None


def _children_proc(pid: int, all_threads: bool = True) -> list[int] | None:
    """Direct children from /proc/<pid>/task/*/children (cheap); None where unsupported."""
    if all_threads:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return None
    else:
        tids = [str(pid)]
    out: list[int] = []
    for tid in tids:
        path = f"/proc/{pid}/task/{tid}/children"
        if not os.path.exists(path):
            if tid == str(pid) and os.path.exists(f"/proc/{pid}"):
                return None  # kernel without CONFIG_PROC_CHILDREN
            continue  # thread or process gone
        out.extend(int(x) for x in read_bytes(path).split())
    return out


class ProcessTree:
    """CPU seconds, pids and RSS of a process and its descendants, from /proc/<pid>/stat.

    Descendants come from /proc/<pid>/task/*/children where the kernel has it (a few reads),
    else from psutil (which scans every process on the host).
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        if not os.path.exists(f"/proc/{pid}") and not psutil.pid_exists(pid):
            raise psutil.NoSuchProcess(pid)
        self._last: dict[int, tuple[int, float, float]] = {}  # pid -> (start, own, kids)
        self._pids: set[int] = {pid}
        self._rss = 0
        self._n = 0
        self.cpu_delta_s()  # prime

    def alive(self) -> bool:
        """Whether the root was alive (not a zombie) at the last ``cpu_delta_s``."""
        return self.pid in self._pids

    def _walk(self) -> list[int]:
        """Tree members: every thread's children list each FULL_WALK_EVERY samples, else
        only the main threads' (where fork usually happens) plus the members already known."""
        self._n += 1
        full = self._n % FULL_WALK_EVERY == 1
        pids: list[int] = []
        seen: set[int] = set()
        todo = [self.pid] if full else [self.pid, *self._pids]
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            pids.append(pid)
            kids = _children_proc(pid, all_threads=full)
            if kids is None:  # no /proc children files: let psutil do the whole tree
                try:
                    root = psutil.Process(self.pid)
                    return [self.pid, *(c.pid for c in root.children(recursive=True))]
                except psutil.Error:
                    return pids
            todo.extend(kids)
        return pids

    def cpu_delta_s(self) -> float:
        """CPU seconds the tree used since the previous call (also refreshes pids and RSS).

        Own time of live members, plus growth of their reaped-children time, minus what was
        already counted for members that have since gone (their total moves into a parent's
        children_* when reaped). Time a member used in its last partial interval before
        exiting unreaped is lost; bounded by one interval.
        """
        cur: dict[int, tuple[int, float, float]] = {}
        rss = 0
        for pid in self._walk():
            st = parse_pid_stat(read_bytes(f"/proc/{pid}/stat"))
            if st is None or st.state in ("Z", "X"):
                continue
            cur[pid] = (st.start, st.own_s, st.kids_s)
            rss += st.rss
        own_delta = kids_growth = 0.0
        for pid, (start, own, kids) in cur.items():
            last = self._last.get(pid)
            last_own, last_kids = (last[1], last[2]) if last and last[0] == start else (0, kids)
            own_delta += max(0.0, own - last_own)
            kids_growth += max(0.0, kids - last_kids)
        gone = 0.0
        for pid, (start, own, kids) in self._last.items():
            now = cur.get(pid)
            if now is None or now[0] != start:  # exited (or its pid was reused)
                gone += own + kids
        self._last, self._pids, self._rss = cur, set(cur), rss
        return own_delta + max(0.0, kids_growth - gone)

    def pids(self) -> set[int]:
        """Members seen by the last ``cpu_delta_s``."""
        return set(self._pids)

    def rss_bytes(self) -> int:
        """Resident memory of the members seen by the last ``cpu_delta_s``."""
        return self._rss


# Virtual block devices stacked on real disks (or memory): summing them would double count.
_VIRTUAL_DISK = ("loop", "ram", "zram", "dm-", "md", "nbd", "sr")


def whole_disks(sys_block: str = "/sys/block") -> frozenset[str]:
    try:
        names = os.listdir(sys_block)
    except OSError:
        return frozenset()
    return frozenset(n for n in names if not n.startswith(_VIRTUAL_DISK))


def parse_diskstats(text: str, disks: frozenset[str]) -> tuple[int, int]:
    """(read, written) bytes of whole disks from /proc/diskstats.

    Sectors there are always 512 bytes, whatever the device's sector size (kernel
    Documentation/admin-guide/iostats.rst; include/linux/types.h, "sector_t ... 512-byte").
    """
    r = w = 0
    for line in text.splitlines():
        head = line.split(None, 3)
        if len(head) < 4 or head[2] not in disks:
            continue  # most lines are loop/partition devices: do not split them fully
        f = line.split()
        r += int(f[5]) * 512
        w += int(f[9]) * 512
    return r, w


def parse_net_dev(text: str) -> tuple[int, int]:
    """(sent, received) bytes of all interfaces but loopback from /proc/net/dev."""
    sent = recv = 0
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        f = rest.split()
        if name.strip() == "lo" or len(f) < 9:
            continue
        recv += int(f[0])
        sent += int(f[8])
    return sent, recv


def _read_text(path: str) -> str:
    return read_bytes(path).decode("ascii", errors="replace")


class HostIo:
    """Disk and network byte counters as deltas since the previous call.

    Parsed from /proc directly (two reads a sample) rather than psutil, which stats every
    block device on each call; loopback traffic (e.g. a local Kafka) is not network I/O.
    """

    def __init__(self) -> None:
        self._disks = whole_disks()
        self._prev = self._read()

    def _read(self) -> tuple[int, int, int, int]:
        r, w = parse_diskstats(_read_text("/proc/diskstats"), self._disks)
        sent, recv = parse_net_dev(_read_text("/proc/net/dev"))
        return r, w, sent, recv

    def delta(self) -> tuple[int, int, int, int]:
        cur = self._read()
        out = tuple(max(0, c - p) for c, p in zip(cur, self._prev, strict=True))
        self._prev = cur
        return out  # type: ignore[return-value]


def host_used_bytes() -> int:
    vm = psutil.virtual_memory()
    return int(vm.total - vm.available)
