"""A pause of hours (the collector SIGSTOPped with its job) still yields events the contract
accepts: the sampler splits the gap into pieces of at most ``interval_s``'s maximum.

Real sampler over the fake powercap tree; only its clock is injected (hours cannot pass in a
test), as the sampler allows for exactly this.
"""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from carbonpipe.core.contracts import validation_errors
from collector.devices.cpu import make_cpu_source
from collector.devices.powercap import default_opener
from collector.devices.ram import make_ram_source
from collector.events import Interval, RunIdentity
from collector.procs import ProcessTree
from collector.sampler import Sampler, max_interval_s, split_interval
from collector.tdp import Tdp
from tests.collector.fake_sysfs import FakePowercap


def test_contract_maximum_is_an_hour() -> None:
    assert max_interval_s() == 3600.0


def test_three_hour_pause_becomes_four_valid_events_with_every_joule(tmp_path: Path) -> None:
    pc = FakePowercap(tmp_path / "sys")
    pc.package(0, max_uj=2**42)  # no wrap: RAPL's own wrap over long gaps is not this test's
    pc.dram(0, max_uj=2**42)
    tdp = Tdp(100.0, "test")
    now = [1000.0]
    sampler = Sampler(
        RunIdentity("long-pause", "u", "m", "h", "GB"), ProcessTree(os.getpid()),
        make_cpu_source(tmp_path / "sys", tdp, default_opener),
        make_ram_source(tmp_path / "sys", 0.375, default_opener), tdp,
        tags={"schedule_decision_id": "d1"}, clock=lambda: now[0])  # fmt: skip
    now[0] += 1.0
    pc.advance("intel-rapl:0", 40.0)
    before = sampler.samples()
    gap = 3 * 3600 + 7.5  # frozen by the scheduler for three hours and a bit
    now[0] += gap
    pc.advance("intel-rapl:0", 9000.0)
    pc.advance("intel-rapl:0:0", 300.0)
    after = sampler.samples("end")

    assert len(before) == 1 and len(after) == 4
    for e in before + after:
        assert validation_errors(e) == [], e
    assert [e["seq"] for e in before + after] == [0, 1, 2, 3, 4]
    assert [e["event_type"] for e in after] == ["sample", "sample", "sample", "end"]
    assert all(e["interval_s"] == pytest.approx(gap / 4) for e in after)
    assert sum(e["cpu_host_energy_j"] for e in after) == pytest.approx(9000.0)
    ram = [e["ram_energy_j"] for e in after]  # the job's share of DRAM: spread evenly
    assert ram[0] > 0 and all(r == pytest.approx(ram[0]) for r in ram)
    # consecutive pieces ending at the resume: each one's end is the next one's start
    ends = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in after]
    assert all((b - a).total_seconds() == pytest.approx(gap / 4, abs=1e-3)
               for a, b in itertools.pairwise(ends))  # fmt: skip
    assert all(e["schedule_decision_id"] == "d1" for e in after)


def test_split_keeps_byte_counts_exact_and_short_intervals_whole() -> None:
    iv = Interval(end=datetime(2024, 1, 1, 12, tzinfo=timezone.utc), interval_s=7201.0,
                  cpu_host_j=30.0, cpu_share=0.5, cpu_method="measured", cpu_model="rapl",
                  cpu_util=0.2, ram_j=3.0, ram_method="estimated", ram_model="w_per_gb",
                  ram_used_bytes=2**30, io=(10, 11, 0, 7))  # fmt: skip
    parts = split_interval(iv, 3600.0)
    assert len(parts) == 3
    assert [sum(p.io[k] for p in parts) for k in range(4)] == [10, 11, 0, 7]
    assert parts[-1].end == iv.end and all(p.ram_used_bytes == 2**30 for p in parts)
    assert split_interval(iv, 7201.0) == [iv]
