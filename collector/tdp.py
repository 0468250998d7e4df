"""TDP lookup for the CPU estimate: config override > data/cpu_tdp.csv > per-thread default.

Every figure says where it came from (``src``) so the event's ``cpu_model`` names it.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from carbonpipe.core.resources import resource

TDP_TABLE = resource("data/cpu_tdp.csv")

# Unknown CPU: 4 W per hardware thread, CodeCarbon's DEFAULT_POWER_PER_CORE
# (codecarbon/core/cpu.py, v3.3.2, MIT) - a deliberately rough, documented guess.
DEFAULT_W_PER_THREAD = 4.0
DEFAULT_SRC = "default_4W_per_thread(codecarbon DEFAULT_POWER_PER_CORE)"


@dataclass(frozen=True)
class Tdp:
    watts: float
    source: str


def cpu_model_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """First "model name" in /proc/cpuinfo ("" where absent, e.g. some ARM kernels)."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@functools.lru_cache(maxsize=4)
def load_table(path: Path = TDP_TABLE) -> tuple[tuple[re.Pattern[str], float, str], ...]:
    rows: list[tuple[re.Pattern[str], float, str]] = []
    with open(path, encoding="utf-8") as fh:
        lines = [ln for ln in fh if ln.strip() and not ln.startswith("#")]
    for row in csv.DictReader(lines):
        rows.append((re.compile(row["pattern"], re.IGNORECASE), float(row["tdp_w"]), row["source"]))
    return tuple(rows)


def sockets(cpuinfo: Path = Path("/proc/cpuinfo")) -> int:
    """Number of physical packages (TDP is per package)."""
    try:
        ids = {
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
            if ln.startswith("physical id")
        }
    except OSError:
        return 1
    return max(1, len(ids))


def lookup_tdp(
    model: str, override_w: float | None = None, threads: int | None = None, n_sockets: int = 1
) -> Tdp:
    """Host TDP (all sockets): override, else table match × sockets, else threads × default."""
    if override_w is not None:
        return Tdp(float(override_w), "config:CARBONPIPE_CPU_TDP_W")
    for pattern, watts, _source in load_table():
        if model and pattern.search(model):
            return Tdp(watts * n_sockets, f"{TDP_TABLE.name}[{pattern.pattern}]x{n_sockets}")
    n = threads or os.cpu_count() or 1
    return Tdp(DEFAULT_W_PER_THREAD * n, f"{DEFAULT_SRC}x{n}")
