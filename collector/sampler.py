"""One sample = read every source over the interval since the last one, build one event.

The sampler owns the attribution rule: the job's CPU energy is the host package energy
times the process tree's share of busy CPU time over the same interval.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from collector import progress
from collector.devices.cpu import CpuSource, TdpEstimatedCpu
from collector.devices.gpu import GpuReading, GpuSource, NoGpu
from collector.devices.powercap import PowercapError
from collector.devices.ram import ModelRam, RamSource
from collector.energy import cpu_share, utilisation
from collector.events import Interval, RunIdentity, build_event
from collector.procs import HostIo, ProcessTree, host_cpu, host_used_bytes
from collector.tdp import Tdp


class Sampler:
    def __init__(
        self,
        ident: RunIdentity,
        tree: ProcessTree,
        cpu: CpuSource,
        ram: RamSource,
        fallback_tdp: Tdp,
        gpu: GpuSource | None = None,
        tags: dict[str, Any] | None = None,
        progress_file: Path | None = None,
        seq_start: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ident = ident
        self.tree = tree
        self.cpu = cpu
        self.ram = ram
        self.gpu: GpuSource = gpu or NoGpu()
        self.tags = dict(tags or {})
        self.progress_file = progress_file
        self.seq = seq_start
        self._fallback_tdp = fallback_tdp
        self._clock = clock
        self._io = HostIo()
        self._host = host_cpu()
        self._t = clock()

    def _cpu_host_j(self, dt: float, util: float) -> float:
        try:
            return self.cpu.read(dt, util)
        except PowercapError as exc:  # counter became unreadable mid-run: estimate on
            self.cpu = TdpEstimatedCpu(self._fallback_tdp, f"rapl failed mid-run: {exc}")
            return self.cpu.read(dt, util)

    def _ram_j(self, dt: float, rss: int, used: int) -> float:
        try:
            return self.ram.read(dt, rss, used)
        except PowercapError:
            self.ram = ModelRam()
            return self.ram.read(dt, rss, used)

    def _gpus(self, dt: float) -> list[GpuReading]:
        if isinstance(self.gpu, NoGpu):
            return []
        try:
            return self.gpu.read(dt, self.tree.pids())
        except Exception as exc:  # a driver hiccup must not cost the event
            print(
                f"carbonpipe collector: GPU read failed ({type(exc).__name__}: {exc}); "
                "this interval has no GPU figures",
                file=sys.stderr,
                flush=True,
            )
            return []

    def sample(self, event_type: str = "sample") -> dict[str, Any]:
        now = self._clock()
        dt = max(now - self._t, 1e-6)
        self._t = now
        host = host_cpu()
        busy, total = host.busy_s - self._host.busy_s, host.total_s - self._host.total_s
        self._host = host
        tree_s = self.tree.cpu_delta_s()
        util = utilisation(busy, total)
        cpu_j = self._cpu_host_j(dt, util)
        rss = self.tree.rss_bytes()
        used = host_used_bytes() if self.ram.method == "measured" else 0  # only RAPL needs it
        ram_j = self._ram_j(dt, rss, used)
        gpus = self._gpus(dt)
        iv = Interval(
            end=datetime.now(timezone.utc),
            interval_s=dt,
            cpu_host_j=cpu_j,
            cpu_share=cpu_share(tree_s, busy),
            cpu_method=self.cpu.method,
            cpu_model=self.cpu.model,
            cpu_util=util,
            ram_j=ram_j,
            ram_method=self.ram.method,
            ram_model=self.ram.model,
            ram_used_bytes=rss,
            gpus=gpus,
            io=self._io.delta(),
            cpu_fallback_reason=self.cpu.fallback_reason,
            gpu_model=self.gpu.model,
        )
        tags = {**self.tags, **progress.current(self.progress_file)}
        ev = build_event(self.ident, self.seq, iv, event_type=event_type, tags=tags)
        self.seq += 1
        return ev
