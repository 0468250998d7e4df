"""The real sampling loop over a fake powercap tree: events carry exactly the joules."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import ConfigError, Settings, load_settings
from carbonpipe.core.contracts import validation_errors
from carbonpipe.core.errors import UserError
from collector import progress
from collector.publish import MemorySink
from collector.runner import build_collector, resolve_zone
from tests.collector.fake_sysfs import FakePowercap


def _spin(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(10_000))


def test_events_carry_exactly_the_counter_joules(
    powercap: FakePowercap, settings: Settings
) -> None:
    max_uj = 50_000_000  # 50 J range: the second package wraps during the run
    powercap.package(0)
    powercap.package(1, start_uj=max_uj - 2_000_000, max_uj=max_uj)
    powercap.dram(0)
    sink = MemorySink()
    stop = threading.Event()
    spinner = threading.Thread(target=_spin, args=(stop,))
    spinner.start()
    col = build_collector(
        settings,
        run_id="loop-1",
        user_id="u",
        model_name="m",
        interval_s=0.2,
        sink=sink,
        tags={"rank": 0},
    ).start()
    total = 0.0
    try:
        for i in range(12):
            time.sleep(0.09)
            powercap.advance("intel-rapl:0", 1.5 + i)
            powercap.advance("intel-rapl:1", 0.75)
            powercap.advance("intel-rapl:0:0", 0.5)
            total += 1.5 + i + 0.75
            progress.report(epoch=1, step=i, force=True)
    finally:
        col.stop()
        stop.set()
        spinner.join()
        progress.reset()
    events = sink.events
    assert len(events) >= 4
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[-1]["event_type"] == "end"
    assert all(e["event_type"] == "sample" for e in events[:-1])
    for e in events:
        assert validation_errors(e) == [], e
        assert e["cpu_method"] == "measured" and e["cpu_model"] == "rapl(packages=2)"
        assert e["ram_method"] == "measured"
        assert e["cpu_energy_j"] == pytest.approx(e["cpu_host_energy_j"] * e["cpu_share"])
        assert e["region"] == "GB" and e["pid"] == os.getpid() and e["rank"] == 0
    assert sum(e["cpu_host_energy_j"] for e in events) == pytest.approx(total, abs=1e-5)
    assert any(e["cpu_share"] > 0 for e in events)
    assert any(e.get("step") is not None and e.get("epoch") == 1 for e in events)


def test_this_machine_without_rapl_says_estimated(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, zone="GB")  # the real /sys
    sink = MemorySink()
    col = build_collector(
        settings, run_id="here", user_id="u", model_name="m", interval_s=0.2, sink=sink
    ).start()
    time.sleep(0.5)
    col.stop()
    e = sink.events[0]
    assert validation_errors(e) == []
    if e["cpu_method"] == "estimated":
        assert e["cpu_model"].startswith("tdp_x_util(tdp_w=")
        assert "src=" in e["cpu_model"] and e["cpu_fallback_reason"]
    else:  # a host with readable RAPL
        assert e["cpu_model"].startswith("rapl(")
    assert e["ram_method"] in ("measured", "estimated") and e["ram_model"]
    if e["gpu_count"] == 0:
        assert "gpus" not in e


def test_one_collector_per_run_and_host(settings: Settings) -> None:
    col = build_collector(
        settings, run_id="dup", user_id="u", model_name="m", interval_s=0.2, sink=MemorySink()
    ).start()
    try:
        with pytest.raises(UserError, match="another collector"):
            build_collector(settings, run_id="dup", user_id="u", model_name="m", sink=MemorySink())
    finally:
        col.stop()
    # a restarted collector for the same run continues seq
    sink = MemorySink()
    col2 = build_collector(
        settings, run_id="dup", user_id="u", model_name="m", interval_s=0.2, sink=sink
    ).start()
    col2.stop()
    assert sink.events[0]["seq"] >= 1


def test_zone_resolution_order(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path, zone="DE")
    assert resolve_zone("FR", s) == "FR"
    assert resolve_zone(None, s) == "DE"
    s2 = load_settings(home=tmp_path, zone=None, cloud_region="aws:eu-west-1")
    assert resolve_zone(None, s2)  # mapped by carbonpipe.intensity.zones when present
    nothing = load_settings(home=tmp_path, zone=None, cloud_region=None, allow_fallback_zone=None)
    assert resolve_zone(None, nothing) == "WORLD"  # still measures, charged the world average
    with pytest.raises(ConfigError, match="--zone"):
        resolve_zone(None, load_settings(home=tmp_path, zone="ATLANTIS"))


def test_observers_see_every_event_in_order_and_cannot_break_collection(
    powercap: FakePowercap, settings: Settings
) -> None:
    """A failing observer is reported, never fatal; every observer gets each event, then close."""
    powercap.package(0)
    seen: list[tuple[str, int]] = []
    closed: list[str] = []

    class Recorder:
        def on_event(self, event: dict[str, Any]) -> None:
            seen.append((event["event_type"], event["seq"]))

        def close(self) -> None:
            closed.append("recorder")

    class Broken:
        def on_event(self, event: dict[str, Any]) -> None:
            raise RuntimeError("observer bug")

        def close(self) -> None:
            raise RuntimeError("close bug")

    sink = MemorySink()
    col = build_collector(settings, run_id="obs-1", user_id="u", model_name="m", interval_s=0.1,
                          sink=sink, observers=[Broken(), Recorder()]).start()  # fmt: skip
    time.sleep(0.35)
    col.stop()
    assert [e["seq"] for e in sink.events] == [s for _, s in seen]  # every published event
    assert seen and seen[-1][0] == "end"
    assert [s for _, s in seen] == list(range(len(seen)))
    assert closed == ["recorder"]
