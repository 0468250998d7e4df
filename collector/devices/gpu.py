"""GPU energy sources: NVML (pynvml imported lazily, only here) or none.

Per GPU: the total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ, Volta and
newer) where supported, else the power reading (``nvmlDeviceGetPowerUsage``, mW) integrated
by the trapezoid rule between samples. Only the GPUs the job may use are read
(``visible_tokens``), and each is charged to the job by its share of SM utilisation
(``nvmlDeviceGetProcessUtilization``).
Units are NVML's: energy in mJ, power in mW, memory in bytes (NVML API reference, Device
Queries: https://docs.nvidia.com/deploy/nvml-api/group__nvmlDeviceQueries.html).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from collector.energy import counter_delta, trapezoid_j

Method = Literal["measured", "estimated"]


@dataclass
class GpuReading:
    index: int
    uuid: str
    name: str
    energy_j: float
    power_w: float
    utilization_pct: float
    mem_used_mb: float
    process_share: float
    method: Method

    def as_event(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "uuid": self.uuid,
            "name": self.name,
            "power_w": round(self.power_w, 3),
            "energy_j": round(self.energy_j, 3),
            "utilization_pct": self.utilization_pct,
            "mem_used_mb": round(self.mem_used_mb, 1),
            "process_share": round(self.process_share, 4),
            "method": self.method,
        }


class GpuSource(Protocol):
    model: str

    def read(self, interval_s: float, pids: set[int]) -> list[GpuReading]:
        """One reading per visible GPU, energies since the previous call."""
        ...

    def close(self) -> None: ...


class NoGpu:
    """No GPU (or no NVML): the events say gpu_count 0 and carry no GPU figures."""

    model = "none"

    def __init__(self, reason: str = "no NVIDIA GPU") -> None:
        self.reason = reason

    def read(self, interval_s: float, pids: set[int]) -> list[GpuReading]:
        return []

    def close(self) -> None:
        return None


def visible_tokens(env: Mapping[str, str]) -> list[str] | None:
    """GPUs the job may use: CUDA_VISIBLE_DEVICES, else SLURM_STEP_GPUS, else SLURM_JOB_GPUS.

    Tokens are indexes or UUIDs (``GPU-...``, ``MIG-...``); None means all GPUs.
    """
    for key in ("CUDA_VISIBLE_DEVICES", "SLURM_STEP_GPUS", "SLURM_JOB_GPUS"):
        raw = env.get(key)
        if raw is not None:
            return [t.strip() for t in raw.split(",") if t.strip()]
    return None


def token_matches(token: str, index: int, uuid: str) -> bool:
    """An index token equals the index; a UUID token may be a unique prefix (CUDA rule)."""
    if token.isdigit():
        return int(token) == index
    return bool(uuid) and uuid.startswith(token)


def process_share(samples: Mapping[int, float], pids: set[int], pid_alive: Any = None) -> float:
    """The job's share of one GPU from per-process SM utilisation samples {pid: sm%}.

    No samples, or none of the sampled pids visible here (container PID namespace): 1.0,
    because a GPU handed to the job is charged to it whole.
    """
    total = sum(samples.values())
    if total <= 0:
        return 1.0
    alive = pid_alive or (lambda p: os.path.exists(f"/proc/{p}"))
    if not any(alive(p) for p in samples):
        return 1.0
    return min(1.0, sum(v for p, v in samples.items() if p in pids) / total)


@dataclass
class _Dev:
    index: int
    handle: Any
    uuid: str
    name: str
    share_hint: float = 1.0  # MIG slice: memory fraction of the parent
    prev_mj: int | None = None
    prev_power: tuple[float, float] | None = None
    last_ts: int = 0
    counter: bool = field(default=True)


class NvmlGpu:
    """NVIDIA GPUs through NVML. ``nvml`` is injectable (tests pass a fake module)."""

    def __init__(self, env: Mapping[str, str] | None = None, nvml: Any = None) -> None:
        if nvml is None:
            import pynvml  # lazy: only hosts with the NVIDIA driver pay for it

            nvml = pynvml
        self._nv = nvml
        nvml.nvmlInit()
        tokens = visible_tokens(os.environ if env is None else env)
        self._devs = self._select(tokens)
        self._clock = time.monotonic
        for dev in self._devs:
            self._prime(dev)
        kinds = {"nvml_energy_counter" if d.counter else "nvml_power_trapezoid" for d in self._devs}
        self.model = "+".join(sorted(kinds)) or "nvml(no visible gpu)"

    def _select(self, tokens: list[str] | None) -> list[_Dev]:
        nv = self._nv
        out: list[_Dev] = []
        for i in range(nv.nvmlDeviceGetCount()):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            uuid, name = _s(nv.nvmlDeviceGetUUID(h)), _s(nv.nvmlDeviceGetName(h))
            if tokens is None or any(token_matches(t, i, uuid) for t in tokens):
                out.append(_Dev(i, h, uuid, name))
                continue
            hint = self._mig_share(h, tokens)
            if hint > 0:  # MIG slices: energy is only counted on the parent
                out.append(_Dev(i, h, uuid, name, share_hint=hint))
        return out

    def _mig_share(self, handle: Any, tokens: list[str]) -> float:
        nv = self._nv
        try:
            current, _ = nv.nvmlDeviceGetMigMode(handle)
            if not current:
                return 0.0
            total = nv.nvmlDeviceGetMemoryInfo(handle).total
            mine = 0
            for j in range(nv.nvmlDeviceGetMaxMigDeviceCount(handle)):
                try:
                    mh = nv.nvmlDeviceGetMigDeviceHandleByIndex(handle, j)
                except nv.NVMLError:
                    continue
                if any(_s(nv.nvmlDeviceGetUUID(mh)).startswith(t) for t in tokens):
                    mine += nv.nvmlDeviceGetMemoryInfo(mh).total
            return min(1.0, mine / total) if total else 0.0
        except (AttributeError, self._nv.NVMLError):
            return 0.0

    def _prime(self, dev: _Dev) -> None:
        try:
            dev.prev_mj = int(self._nv.nvmlDeviceGetTotalEnergyConsumption(dev.handle))
        except self._nv.NVMLError:
            dev.counter = False
            dev.prev_power = (self._clock(), self._power_w(dev))

    def _power_w(self, dev: _Dev) -> float:
        try:
            return float(self._nv.nvmlDeviceGetPowerUsage(dev.handle)) / 1000.0
        except self._nv.NVMLError:
            return 0.0

    def _energy_j(self, dev: _Dev) -> float:
        if dev.counter:
            try:
                cur = int(self._nv.nvmlDeviceGetTotalEnergyConsumption(dev.handle))
            except self._nv.NVMLError:  # counter gone: integrate power from now on
                dev.counter = False
                dev.prev_power = (self._clock(), self._power_w(dev))
                return 0.0
            prev = dev.prev_mj if dev.prev_mj is not None else cur
            dev.prev_mj = cur
            return counter_delta(prev, cur, None) / 1000.0
        now = (self._clock(), self._power_w(dev))
        prev_p = dev.prev_power or now
        dev.prev_power = now
        return trapezoid_j([prev_p, now])

    def _samples(self, dev: _Dev) -> dict[int, float]:
        nv = self._nv
        try:
            rows = nv.nvmlDeviceGetProcessUtilization(dev.handle, dev.last_ts)
        except (nv.NVMLError, AttributeError):
            return {}
        out: dict[int, float] = {}
        for r in rows:
            out[int(r.pid)] = out.get(int(r.pid), 0.0) + float(r.smUtil)
            dev.last_ts = max(dev.last_ts, int(r.timeStamp))
        return out

    def read(self, interval_s: float, pids: set[int]) -> list[GpuReading]:
        nv = self._nv
        out = []
        for dev in self._devs:
            energy = self._energy_j(dev)
            try:
                util = float(nv.nvmlDeviceGetUtilizationRates(dev.handle).gpu)
            except nv.NVMLError:
                util = 0.0
            try:
                mem = float(nv.nvmlDeviceGetMemoryInfo(dev.handle).used) / 2**20
            except nv.NVMLError:
                mem = 0.0
            share = process_share(self._samples(dev), pids) * dev.share_hint
            power = energy / interval_s if interval_s > 0 else 0.0
            out.append(
                GpuReading(
                    dev.index, dev.uuid, dev.name, energy, power, util, mem, share, "measured"
                )
            )
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):  # shutting down; nothing useful to do
            self._nv.nvmlShutdown()


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def make_gpu_source(env: Mapping[str, str] | None = None) -> GpuSource:
    """NVML when the library and a driver are there, else NoGpu with the reason."""
    try:
        src = NvmlGpu(env)
    except Exception as exc:  # any NVML failure means "no GPU here"
        return NoGpu(f"nvml unavailable: {type(exc).__name__}: {exc}")
    if not src._devs:
        src.close()
        return NoGpu("no visible GPU")
    return src
