"""Event building: contract fields, GPU totals, tags."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from carbonpipe.core.contracts import validation_errors
from collector.devices.gpu import GpuReading
from collector.events import Interval, RunIdentity, build_event, parse_tags

IDENT = RunIdentity("r1", "u1", "bert", "host-a", "DE")


def _iv(**kw: object) -> Interval:
    base: dict[str, object] = dict(
        end=datetime(2026, 1, 1, tzinfo=timezone.utc),
        interval_s=2.0,
        cpu_host_j=100.0,
        cpu_share=0.25,
        cpu_method="measured",
        cpu_model="rapl(packages=1)",
        cpu_util=0.5,
        ram_j=3.0,
        ram_method="estimated",
        ram_model="w_per_gb_x_rss(...)",
        ram_used_bytes=2**30,
        io=(1, 2, 3, 4),
    )
    base.update(kw)
    return Interval(**base)  # type: ignore[arg-type]


def test_cpu_share_and_contract() -> None:
    ev = build_event(IDENT, 0, _iv(), tags=parse_tags(["epoch=2", "step=9", "rank=1"]))
    assert validation_errors(ev) == []
    assert ev["cpu_energy_j"] == 25.0 and ev["cpu_host_energy_j"] == 100.0
    assert ev["cpu_power_w"] == 12.5 and ev["ram_used_mb"] == 1024.0
    assert (ev["epoch"], ev["step"], ev["rank"]) == (2, 9, 1)
    assert ev["timestamp"] == "2026-01-01T00:00:00.000Z" and ev["schema_version"] == 1
    assert "gpus" not in ev and ev["gpu_count"] == 0


def test_gpu_totals_are_the_jobs_share() -> None:
    gpus = [
        GpuReading(0, "GPU-a", "H100", 200.0, 100.0, 90.0, 1000.0, 0.5, "measured"),
        GpuReading(1, "GPU-b", "H100", 100.0, 50.0, 10.0, 500.0, 1.0, "measured"),
    ]
    ev = build_event(IDENT, 3, _iv(gpus=gpus, gpu_model="nvml_energy_counter"), "end")
    assert validation_errors(ev) == []
    assert ev["gpu_energy_j"] == 200.0 and ev["gpu_power_w"] == 100.0
    assert ev["gpu_count"] == 2 and len(ev["gpus"]) == 2 and ev["event_type"] == "end"
    assert ev["gpu_utilization_pct"] == 50.0 and ev["gpu_mem_used_mb"] == 1500.0


def test_bad_tag() -> None:
    with pytest.raises(ValueError):
        parse_tags(["oops"])
