"""NVML source against a fake pynvml module (no GPU on CI), and the visibility rules."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from collector.devices.gpu import (
    NoGpu,
    NvmlGpu,
    make_gpu_source,
    process_share,
    token_matches,
    visible_tokens,
)


class NVMLError(Exception):
    pass


class FakeNvml:
    """Two GPUs: 0 has the energy counter (Volta+), 1 only power readings."""

    NVMLError = NVMLError

    def __init__(self) -> None:
        self.energy_mj = {0: 1_000_000}
        self.power_mw = {0: 200_000, 1: 100_000}
        self.samples: dict[int, list[Any]] = {0: [], 1: []}
        self.shutdown = False

    def nvmlInit(self) -> None: ...  # noqa: N802 - NVML names
    def nvmlShutdown(self) -> None:  # noqa: N802 - NVML names
        self.shutdown = True

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802 - NVML names
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:  # noqa: N802 - NVML names
        return i

    def nvmlDeviceGetUUID(self, h: int) -> str:  # noqa: N802 - NVML names
        return f"GPU-{h}aaa-bbb"

    def nvmlDeviceGetName(self, h: int) -> bytes:  # noqa: N802 - NVML names
        return b"Fake H100"

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:  # noqa: N802 - NVML names
        if h not in self.energy_mj:
            raise NVMLError("not supported")
        return self.energy_mj[h]

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:  # noqa: N802 - NVML names
        return self.power_mw[h]

    def nvmlDeviceGetUtilizationRates(self, h: int) -> Any:  # noqa: N802 - NVML names
        return SimpleNamespace(gpu=50 + h)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:  # noqa: N802 - NVML names
        return SimpleNamespace(used=2**30 * (h + 1), total=80 * 2**30)

    def nvmlDeviceGetMigMode(self, h: int) -> tuple[int, int]:  # noqa: N802 - NVML names
        return (0, 0)

    def nvmlDeviceGetProcessUtilization(self, h: int, ts: int) -> list[Any]:  # noqa: N802 - NVML names
        if not self.samples[h]:
            raise NVMLError("not found")
        return self.samples[h]


def test_visible_tokens_precedence() -> None:
    assert visible_tokens({}) is None
    assert visible_tokens({"SLURM_JOB_GPUS": "2,3"}) == ["2", "3"]
    assert visible_tokens({"SLURM_JOB_GPUS": "2", "SLURM_STEP_GPUS": "1"}) == ["1"]
    assert visible_tokens({"CUDA_VISIBLE_DEVICES": "GPU-1a, 0", "SLURM_JOB_GPUS": "5"}) == [
        "GPU-1a",
        "0",
    ]
    assert visible_tokens({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert token_matches("1", 1, "GPU-x") and not token_matches("1", 0, "GPU-1")
    assert token_matches("GPU-1a", 1, "GPU-1aaa-bbb")


def test_process_share_rules() -> None:
    alive = lambda pid: True  # noqa: E731
    assert process_share({}, {1}) == 1.0  # no samples: the GPU is the job's
    assert process_share({10: 30.0, 20: 10.0}, {10}, alive) == 0.75
    assert process_share({10: 30.0}, {99}, lambda p: False) == 1.0  # other PID namespace


def test_counter_and_power_integration_with_share() -> None:
    nv = FakeNvml()
    t = [100.0]
    gpu = NvmlGpu(env={}, nvml=nv)
    gpu._clock = lambda: t[0]
    assert gpu.model == "nvml_energy_counter+nvml_power_trapezoid"
    # the power-only GPU was primed at the real clock; re-prime it on the fake one
    gpu._devs[1].prev_power = (t[0], 0.1 * 1000)
    nv.energy_mj[0] += 250_000  # 250 J on GPU 0
    nv.power_mw[1] = 300_000  # 100 W -> 300 W over 2 s: trapezoid 400 J
    t[0] += 2.0
    me, parent = os.getpid(), os.getppid()  # live pids, as NVML would report them
    nv.samples[0] = [
        SimpleNamespace(pid=me, smUtil=60, timeStamp=5),
        SimpleNamespace(pid=parent, smUtil=20, timeStamp=6),
    ]
    r = gpu.read(2.0, {me})
    assert [g.index for g in r] == [0, 1]
    assert r[0].energy_j == pytest.approx(250.0) and r[0].power_w == pytest.approx(125.0)
    assert r[0].process_share == pytest.approx(0.75)
    assert r[1].energy_j == pytest.approx(400.0) and r[1].process_share == 1.0
    assert r[0].uuid.startswith("GPU-0") and r[0].name == "Fake H100"
    gpu.close()
    assert nv.shutdown


def test_only_visible_gpus_are_read() -> None:
    gpu = NvmlGpu(env={"CUDA_VISIBLE_DEVICES": "GPU-1aaa"}, nvml=FakeNvml())
    assert [d.index for d in gpu._devs] == [1]


def test_no_nvml_means_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    src = make_gpu_source({})
    assert isinstance(src, NoGpu) and src.read(1.0, set()) == []


class FakeMigNvml(FakeNvml):
    """GPU 0 in MIG mode with two 10 GiB slices of its 80 GiB."""

    def nvmlDeviceGetMigMode(self, h: Any) -> tuple[int, int]:  # noqa: N802 - NVML names
        return (1, 1) if h == 0 else (0, 0)

    def nvmlDeviceGetMaxMigDeviceCount(self, h: Any) -> int:  # noqa: N802 - NVML names
        return 2

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: Any, j: int) -> Any:  # noqa: N802
        return ("mig", h, j)

    def nvmlDeviceGetUUID(self, h: Any) -> str:  # noqa: N802 - NVML names
        return f"MIG-{h[1]}-{h[2]}" if isinstance(h, tuple) else super().nvmlDeviceGetUUID(h)

    def nvmlDeviceGetMemoryInfo(self, h: Any) -> Any:  # noqa: N802 - NVML names
        if isinstance(h, tuple):
            return SimpleNamespace(used=0, total=10 * 2**30)
        return super().nvmlDeviceGetMemoryInfo(h)


def test_mig_slice_is_charged_its_fraction_of_the_parent() -> None:
    gpu = NvmlGpu(env={"CUDA_VISIBLE_DEVICES": "MIG-0-1"}, nvml=FakeMigNvml())
    assert [(d.index, d.share_hint) for d in gpu._devs] == [(0, 0.125)]
    r = gpu.read(1.0, set())
    assert r[0].process_share == pytest.approx(0.125)
