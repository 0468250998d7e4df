"""DRAM energy sources: RAPL dram subzones where present (measured), else W-per-GB model.

Both return the job's joules: the measured host figure is charged by the tree's share of
used memory; the model is applied to the tree's resident memory directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from collector.devices.powercap import CounterSet, Opener, PowercapError, default_opener, discover
from collector.energy import ram_model_j

Method = Literal["measured", "estimated"]

# 3 W per 8 GB of DDR3/DDR4 = 0.375 W/GB: Crucial (Micron), "How much power does memory
# use?" https://www.crucial.com/support/articles-faq-memory/how-much-power-does-memory-use,
# the figure CodeCarbon used before v3 (codecarbon/external/ram.py, MIT).
DEFAULT_W_PER_GB = 0.375
DEFAULT_SRC = "crucial_3W_per_8GB"


class RamSource(Protocol):
    method: Method
    model: str

    def read(self, interval_s: float, tree_rss_bytes: int, host_used_bytes: int) -> float:
        """The job's DRAM energy (J) since the previous call."""
        ...


class RaplDram:
    """RAPL ``dram`` subzones (``intel-rapl:N:M`` with name dram); host joules × RSS share."""

    method: Method = "measured"

    def __init__(self, sysfs_root: Path, opener: Opener = default_opener) -> None:
        _, drams = discover(sysfs_root, opener)
        if not drams:
            raise PowercapError("no RAPL dram subzone")
        self._counters = CounterSet(drams, opener)
        self.model = f"rapl_dram(zones={len(drams)})_x_rss_share"
        self.last_host_j = 0.0

    def read(self, interval_s: float, tree_rss_bytes: int, host_used_bytes: int) -> float:
        self.last_host_j = self._counters.delta_j()
        share = min(1.0, tree_rss_bytes / host_used_bytes) if host_used_bytes > 0 else 0.0
        return self.last_host_j * share


class ModelRam:
    """W per GB × the tree's resident GB (documented model, see DEFAULT_W_PER_GB)."""

    method: Method = "estimated"

    def __init__(self, w_per_gb: float | None = None) -> None:
        self.w_per_gb = DEFAULT_W_PER_GB if w_per_gb is None else w_per_gb
        src = DEFAULT_SRC if w_per_gb is None else "config:CARBONPIPE_RAM_W_PER_GB"
        self.model = f"w_per_gb_x_rss(w_per_gb={self.w_per_gb:g},src={src})"

    def read(self, interval_s: float, tree_rss_bytes: int, host_used_bytes: int) -> float:
        return ram_model_j(self.w_per_gb, tree_rss_bytes, interval_s)


def make_ram_source(
    sysfs_root: Path, w_per_gb: float | None, opener: Opener = default_opener
) -> RamSource:
    """Measured when a readable dram zone exists and no model override is configured."""
    if w_per_gb is None:
        try:
            return RaplDram(sysfs_root, opener)
        except PowercapError:
            pass
    return ModelRam(w_per_gb)
