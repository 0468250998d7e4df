"""CPU package energy sources: RAPL counters where readable, TDP × utilisation otherwise.

``read`` returns the whole host's package joules over the interval; attribution to the
job is the sampler's job (same rule for both sources).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from collector.devices.powercap import CounterSet, Opener, PowercapError, default_opener, discover
from collector.energy import tdp_x_util_j
from collector.tdp import Tdp

Method = Literal["measured", "estimated"]


class CpuSource(Protocol):
    method: Method
    model: str
    fallback_reason: str | None

    def read(self, interval_s: float, host_util: float) -> float:
        """Host CPU package energy (J) since the previous call."""
        ...


class RaplCpu:
    """Sum of the RAPL package counters (``intel-rapl:N``, name package-N), Intel or AMD."""

    method: Method = "measured"
    fallback_reason: str | None = None

    def __init__(self, sysfs_root: Path, opener: Opener = default_opener) -> None:
        packages, _ = discover(sysfs_root, opener)
        self._counters = CounterSet(packages, opener)
        self.model = f"rapl(packages={len(packages)})"

    def read(self, interval_s: float, host_util: float) -> float:
        return self._counters.delta_j()


class TdpEstimatedCpu:
    """TDP × host utilisation: an open estimate, named with its TDP and that TDP's source."""

    method: Method = "estimated"

    def __init__(self, tdp: Tdp, fallback_reason: str | None) -> None:
        self.tdp = tdp
        self.fallback_reason = fallback_reason
        self.model = f"tdp_x_util(tdp_w={tdp.watts:g},src={tdp.source})"

    def read(self, interval_s: float, host_util: float) -> float:
        return tdp_x_util_j(self.tdp.watts, host_util, interval_s)


def make_cpu_source(sysfs_root: Path, tdp: Tdp, opener: Opener = default_opener) -> CpuSource:
    """RAPL if every package counter reads now; else the estimate carrying the reason."""
    try:
        return RaplCpu(sysfs_root, opener)
    except PowercapError as exc:
        return TdpEstimatedCpu(tdp, fallback_reason=str(exc))
