"""Fixture: a real ``track()`` run over the fake powercap tree (known counters, real exporters)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from collector import progress
from collector.publish import MemorySink
from collector.track import track
from tests.collector.exporters.helpers import RunFn
from tests.collector.fake_sysfs import FakePowercap


@pytest.fixture
def run_track(powercap: FakePowercap, tmp_path: Path) -> Iterator[RunFn]:
    """``run_track(epochs=3, each=None, **track_kwargs)`` -> the events the run published.

    RAPL package and DRAM counters advance by known joules while the block runs; ``each`` is
    called after every step (scrape, log to a tracker) with the ``track`` object.
    """
    powercap.package(0)
    powercap.dram(0)

    def run(
        epochs: int = 3,
        steps: int = 3,
        each: Callable[[track], None] | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        sink = MemorySink()
        t = track(
            run_id=kwargs.pop("run_id", "exp-1"),
            user_id="ana",
            model_name="resnet",
            zone="GB",
            interval_s=0.2,
            sink=sink,
            home=tmp_path / "home",
            sysfs_root=tmp_path / "sys",
            **kwargs,
        )
        with t:
            for epoch in range(epochs):
                progress.report(epoch=epoch, force=True)
                for _ in range(steps):
                    time.sleep(0.25)
                    powercap.advance("intel-rapl:0", 3.0)
                    powercap.advance("intel-rapl:0:0", 1.0)
                    sum(range(200_000))  # some CPU time, so the process share is not 0
                    if each is not None:
                        each(t)
        return sink.events

    try:
        yield run
    finally:
        progress.reset()
