"""Linux powercap (RAPL) sysfs reader, shared by the CPU package and DRAM sources.

Intel and AMD (since Linux 5.8 for Zen) both expose ``class/powercap/intel-rapl:N`` package
zones with ``intel-rapl:N:M`` subzones whose ``name`` says ``dram``/``core``/``uncore``
(kernel Documentation/power/powercap/powercap.rst). Counters are micro-joules that wrap at
``max_energy_range_uj``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from collector.energy import counter_delta

Opener = Callable[[Path], IO[str]]

_PKG = re.compile(r"^intel-rapl:(\d+)$")
_SUB = re.compile(r"^intel-rapl:(\d+):(\d+)$")


def default_opener(path: Path) -> IO[str]:
    return open(path, encoding="ascii")  # caller closes


class PowercapError(OSError):
    """A RAPL zone is absent or unreadable; the message says which file and why."""


@dataclass
class Zone:
    path: Path
    name: str
    max_range_uj: int | None


def _read(path: Path, opener: Opener) -> str:
    with opener(path) as fh:
        return fh.read().strip()


def discover(sysfs_root: Path, opener: Opener = default_opener) -> tuple[list[Zone], list[Zone]]:
    """Package zones and DRAM subzones under ``<sysfs_root>/class/powercap``.

    Raises PowercapError when there is no package zone or one cannot be read: callers fall
    back to an estimate and put the message in the event.
    """
    base = sysfs_root / "class" / "powercap"
    if not base.is_dir():
        raise PowercapError(f"no powercap interface at {base}")
    packages: list[Zone] = []
    drams: list[Zone] = []
    for entry in sorted(base.iterdir(), key=lambda p: p.name):
        pkg, sub = _PKG.match(entry.name), _SUB.match(entry.name)
        if not (pkg or sub):
            continue
        try:
            name = _read(entry / "name", opener)
        except (OSError, ValueError) as exc:
            raise PowercapError(f"cannot read {entry / 'name'}: {type(exc).__name__}") from exc
        if pkg and not name.startswith("package"):
            continue  # e.g. psys: platform-wide, would double count packages
        if sub and name != "dram":
            continue  # core/uncore are inside the package figure already
        try:
            max_range: int | None = int(_read(entry / "max_energy_range_uj", opener))
        except (OSError, ValueError):
            max_range = None
        zone = Zone(entry, name, max_range)
        (packages if pkg else drams).append(zone)
        read_uj(zone, opener)  # prove the counter is readable now, not mid-run
    if not packages:
        raise PowercapError(f"no readable RAPL package zone under {base}")
    return packages, drams


def read_uj(zone: Zone, opener: Opener = default_opener) -> int:
    path = zone.path / "energy_uj"
    try:
        return int(_read(path, opener))
    except (OSError, ValueError) as exc:
        raise PowercapError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc


class CounterSet:
    """Previous readings of a set of zones; ``delta_j`` returns joules since the last call."""

    def __init__(self, zones: list[Zone], opener: Opener = default_opener) -> None:
        self.zones = zones
        self._opener = opener
        self._prev = [read_uj(z, opener) for z in zones]

    def delta_j(self) -> float:
        cur = [read_uj(z, self._opener) for z in self.zones]
        total_uj = sum(
            counter_delta(p, c, z.max_range_uj)
            for p, c, z in zip(self._prev, cur, self.zones, strict=True)
        )
        self._prev = cur
        return total_uj / 1e6
