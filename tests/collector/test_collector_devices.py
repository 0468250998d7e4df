"""CPU and RAM sources over fake powercap trees (tmp_path), and the TDP table."""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO

import pytest

from collector.devices.cpu import RaplCpu, TdpEstimatedCpu, make_cpu_source
from collector.devices.powercap import PowercapError, discover
from collector.devices.ram import DEFAULT_W_PER_GB, ModelRam, RaplDram, make_ram_source
from collector.tdp import DEFAULT_W_PER_THREAD, Tdp, load_table, lookup_tdp
from tests.collector.fake_sysfs import FakePowercap

TDP = Tdp(100.0, "test")


def test_discovers_packages_and_dram_skips_core_and_psys(powercap: FakePowercap) -> None:
    powercap.package(0)
    powercap.package(1)
    powercap.dram(0)
    powercap.add("intel-rapl:0:1", "core")
    powercap.add("intel-rapl:2", "psys")
    pkgs, drams = discover(powercap.root)
    assert [z.path.name for z in pkgs] == ["intel-rapl:0", "intel-rapl:1"]
    assert [z.path.name for z in drams] == ["intel-rapl:0:0"]


def test_rapl_cpu_sums_packages_in_joules(powercap: FakePowercap) -> None:
    powercap.package(0)
    powercap.package(1)
    cpu = make_cpu_source(powercap.root, TDP)
    assert isinstance(cpu, RaplCpu) and cpu.method == "measured"
    powercap.advance("intel-rapl:0", 12.5)
    powercap.advance("intel-rapl:1", 7.25)
    assert cpu.read(1.0, 0.5) == pytest.approx(19.75)
    assert cpu.read(1.0, 0.5) == 0.0


def test_rapl_counter_wraparound(powercap: FakePowercap) -> None:
    max_uj = 10_000_000  # 10 J range
    powercap.package(0, start_uj=9_000_000, max_uj=max_uj)
    cpu = RaplCpu(powercap.root)
    powercap.advance("intel-rapl:0", 3.0)  # 9 J + 3 J wraps to 2 J (range 10 J + 1 uJ)
    assert powercap.uj["intel-rapl:0"] < 9_000_000
    assert cpu.read(1.0, 0.0) == pytest.approx(3.0, abs=1e-5)


def test_unreadable_counter_falls_back_with_reason(powercap: FakePowercap) -> None:
    d = powercap.package(0)
    (d / "energy_uj").unlink()
    (d / "energy_uj").mkdir()  # root ignores chmod 000; a directory cannot be read either
    cpu = make_cpu_source(powercap.root, Tdp(65.0, "cpu_tdp.csv[x]"))
    assert isinstance(cpu, TdpEstimatedCpu)
    assert cpu.method == "estimated"
    assert cpu.model == "tdp_x_util(tdp_w=65,src=cpu_tdp.csv[x])"
    assert cpu.fallback_reason and "energy_uj" in cpu.fallback_reason
    assert cpu.read(2.0, 0.5) == pytest.approx(65.0)


def test_permission_denied_via_opener_falls_back(powercap: FakePowercap) -> None:
    powercap.package(0)

    def opener(path: Path) -> IO[str]:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return io.StringIO(path.read_text())

    cpu = make_cpu_source(powercap.root, TDP, opener)
    assert isinstance(cpu, TdpEstimatedCpu)
    assert "PermissionError" in (cpu.fallback_reason or "")


def test_no_powercap_at_all(tmp_path: Path) -> None:
    cpu = make_cpu_source(tmp_path, TDP)
    assert cpu.method == "estimated" and "no powercap" in (cpu.fallback_reason or "")
    with pytest.raises(PowercapError):
        discover(tmp_path)


def test_ram_measured_from_dram_zone_charged_by_rss_share(powercap: FakePowercap) -> None:
    powercap.package(0)
    powercap.dram(0)
    ram = make_ram_source(powercap.root, None)
    assert isinstance(ram, RaplDram) and ram.method == "measured"
    powercap.advance("intel-rapl:0:0", 8.0)
    assert ram.read(1.0, tree_rss_bytes=1 * 2**30, host_used_bytes=4 * 2**30) == 2.0
    assert ram.last_host_j == pytest.approx(8.0)


def test_ram_model_without_dram_zone(powercap: FakePowercap) -> None:
    powercap.package(0)
    ram = make_ram_source(powercap.root, None)
    assert isinstance(ram, ModelRam) and ram.method == "estimated"
    assert ram.read(2.0, 4 * 2**30, 0) == pytest.approx(DEFAULT_W_PER_GB * 4 * 2)
    assert "w_per_gb=0.375" in ram.model
    assert "config" in ModelRam(0.5).model


def test_tdp_table_lookup_override_and_default() -> None:
    assert load_table(), "data/cpu_tdp.csv must have rows"
    t = lookup_tdp("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", n_sockets=2)
    assert t.watts == 540 and "cpu_tdp.csv" in t.source
    assert lookup_tdp("AMD EPYC 7763 64-Core Processor").watts == 280
    assert lookup_tdp("anything", override_w=42).source == "config:CARBONPIPE_CPU_TDP_W"
    unknown = lookup_tdp("AMD EPYC", threads=2)
    assert unknown.watts == 2 * DEFAULT_W_PER_THREAD and "default" in unknown.source
