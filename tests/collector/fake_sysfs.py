"""A fake powercap sysfs tree for collector tests (imported by conftest and tests)."""

from __future__ import annotations

import os
from pathlib import Path


class FakePowercap:
    """``<root>/class/powercap/intel-rapl:*`` with counters the test advances atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / "class" / "powercap"
        self.base.mkdir(parents=True, exist_ok=True)
        self.uj: dict[str, int] = {}
        self.max_uj: dict[str, int] = {}

    def add(self, zone: str, name: str, start_uj: int = 0, max_uj: int = 2**32) -> Path:
        d = self.base / zone
        d.mkdir()
        (d / "name").write_text(name + "\n")
        (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
        self.uj[zone], self.max_uj[zone] = start_uj, max_uj
        self._write(zone)
        return d

    def package(self, n: int, **kw: int) -> Path:
        return self.add(f"intel-rapl:{n}", f"package-{n}", **kw)

    def dram(self, n: int, m: int = 0, **kw: int) -> Path:
        return self.add(f"intel-rapl:{n}:{m}", "dram", **kw)

    def advance(self, zone: str, joules: float) -> None:
        self.uj[zone] = (self.uj[zone] + round(joules * 1e6)) % (self.max_uj[zone] + 1)
        self._write(zone)

    def _write(self, zone: str) -> None:
        tmp = self.base / zone / "energy_uj.tmp"
        tmp.write_text(f"{self.uj[zone]}\n")
        os.replace(tmp, self.base / zone / "energy_uj")
