"""psutil/proc readers: process-tree CPU time, /proc parsers, seq blocks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from collector.procs import ProcessTree, parse_diskstats, parse_net_dev
from collector.runner import RunLock

DISKSTATS = """\
   7       0 loop0 5 0 80 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 253       0 vda 100 0 2048 10 50 0 1024 20 0 30 30 0 0 0 0 0 0
 253       1 vda1 90 0 1000 10 40 0 512 20 0 30 30 0 0 0 0 0 0
"""
NETDEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets
    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0
  eth0: 1000 10 0 0 0 0 0 0 400 4 0 0 0 0 0 0
"""


def test_proc_parsers_count_whole_disks_and_skip_loopback() -> None:
    assert parse_diskstats(DISKSTATS, frozenset({"vda"})) == (2048 * 512, 1024 * 512)
    assert parse_net_dev(NETDEV) == (400, 1000)


def test_tree_cpu_includes_children_and_reaped_ones() -> None:
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'sum(range(3*10**7))'])\n"
        "p.wait(); time.sleep(5)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        tree = ProcessTree(proc.pid)
        total = 0.0
        end = time.monotonic() + 15
        while time.monotonic() < end and total < 0.3:
            time.sleep(0.2)
            total += tree.cpu_delta_s()
        assert total >= 0.3  # the grandchild's busy loop, counted while alive or once reaped
        assert tree.rss_bytes() > 0 and proc.pid in tree.pids()
    finally:
        proc.kill()
        proc.wait()


def test_seq_is_persisted_in_blocks_and_exactly_at_stop(tmp_path: Path) -> None:
    lock = RunLock(tmp_path)
    lock.reserve(0)
    assert lock.next_seq() == RunLock.SEQ_BLOCK  # a crash now: restart after the block
    lock.reserve(1)
    assert lock.next_seq() == RunLock.SEQ_BLOCK
    lock.save_seq(7)
    assert lock.next_seq() == 7
    lock.release()
    assert os.path.exists(tmp_path / "lock")


def test_uptime_parser() -> None:
    from collector.procs import host_cpu, parse_uptime

    h = parse_uptime(b"100.00 150.50\n", ncpu=2)
    assert (h.total_s, h.busy_s) == (200.0, 49.5)
    a = host_cpu()
    time.sleep(0.3)
    b = host_cpu()
    assert 0 <= b.busy_s - a.busy_s <= b.total_s - a.total_s
