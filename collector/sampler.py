"""One sample = read every source over the interval since the last one, build one event.

The sampler owns the attribution rule: the job's CPU energy is the host package energy
times the process tree's share of busy CPU time over the same interval.

An interval longer than the contract's ``interval_s`` maximum (an hour) happens when the
collector itself was frozen: ``carbonpipe schedule`` SIGSTOPs the job's process group, the
collector in it, for a pause of hours. One event for it would be dead-lettered, losing the
energy; raising the maximum would instead let a broken clock or a huge ``--interval`` through
unnoticed. So the sampler splits such an interval into equal, contract-valid events: the
counters only tell the total over the gap, and an even spread is all that can honestly be said
(it also lets the stream charge each hour at that hour's intensity, not all at the resume's).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from carbonpipe.core.resources import resource
from collector import progress
from collector.devices.cpu import CpuSource, TdpEstimatedCpu
from collector.devices.gpu import GpuReading, GpuSource, NoGpu
from collector.devices.powercap import PowercapError
from collector.devices.ram import ModelRam, RamSource
from collector.energy import cpu_share, utilisation
from collector.events import Interval, RunIdentity, build_event
from collector.procs import HostIo, ProcessTree, host_cpu, host_used_bytes
from collector.tdp import Tdp


@functools.cache
def max_interval_s() -> float:
    """The contract's ``interval_s`` maximum, read from ``schemas/metric_event.v1.json`` itself
    (plain JSON: ``carbonpipe.core.contracts`` would pull jsonschema into every collector)."""
    with open(resource("schemas/metric_event.v1.json"), encoding="utf-8") as fh:
        return float(json.load(fh)["properties"]["interval_s"]["maximum"])


def split_interval(iv: Interval, max_s: float) -> list[Interval]:
    """``iv`` as consecutive equal pieces of at most ``max_s`` seconds, energies and byte
    counts shared evenly (the remainder bytes go to the last piece); levels (RAM in use,
    utilisation, shares, powers) stay as they are: each piece has the interval's means."""
    n = max(1, math.ceil(iv.interval_s / max_s - 1e-9))
    if n == 1:
        return [iv]
    dt = iv.interval_s / n
    io = [(b // n, b - (n - 1) * (b // n)) for b in iv.io]
    return [dataclasses.replace(
        iv, end=iv.end - timedelta(seconds=dt * (n - 1 - i)), interval_s=dt,
        cpu_host_j=iv.cpu_host_j / n, ram_j=iv.ram_j / n,
        gpus=[dataclasses.replace(g, energy_j=g.energy_j / n) for g in iv.gpus],
        io=tuple(last if i == n - 1 else each for each, last in io),  # type: ignore[arg-type]
    ) for i in range(n)]  # fmt: skip


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

    def samples(self, event_type: str = "sample") -> list[dict[str, Any]]:
        """The events for the interval since the last call: one, or several after a gap longer
        than the contract allows (the last one carries ``event_type``)."""
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
        parts = split_interval(iv, max_interval_s())
        events = []
        for i, part in enumerate(parts):
            kind = event_type if i == len(parts) - 1 else "sample"
            events.append(build_event(self.ident, self.seq, part, event_type=kind, tags=tags))
            self.seq += 1
        return events
