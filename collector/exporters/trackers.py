"""What MLflow and W&B loggers share: which figures, under which names, and when. Pure.

Experiment trackers show GPU *power* already; what they lack is the run's energy and CO2e
(CodeCarbon #799). The loggers add cumulative figures to the run the user already has open:
kWh per device and in total, and gCO2e. They log

- at each epoch boundary when the events carry ``epoch`` (the framework callbacks put it
  there): the totals through the last sample of epoch E, at step E. The boundary is seen at
  the first sample of the next epoch, so the figure is exact to one sample interval;
- otherwise every ``every_n_events`` events (30 s at the default 1 s interval), at step = seq;
- and once more at ``close`` (the final totals).

No active run: the logger logs nothing and says so once; it never starts a run of its own
in-process, because that would hide the user's metrics from the run they look at.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from carbonpipe.core.units import DEVICES
from collector.exporters.totals import RunTotals

PREFIX = "carbonpipe"
EVERY_N_EVENTS = 30


def metric_names() -> list[str]:
    """Every metric key a logger writes, in one place (tests and docs use it)."""
    return [f"{PREFIX}/{d}_energy_kwh" for d in DEVICES] + [
        f"{PREFIX}/energy_kwh",
        f"{PREFIX}/emissions_g",
        f"{PREFIX}/intensity_g_per_kwh",
    ]


def figures(t: RunTotals) -> dict[str, float]:
    """Cumulative kWh per device and in total, gCO2e, and the intensity it used."""
    out = {f"{PREFIX}/{dev}_energy_kwh": kwh for dev, kwh in t.energy_kwh.items()}
    out[f"{PREFIX}/energy_kwh"] = t.total_kwh
    if t.intensity is not None:
        out[f"{PREFIX}/emissions_g"] = t.emissions_g
        out[f"{PREFIX}/intensity_g_per_kwh"] = t.intensity.g_per_kwh
    return out


def labels(t: RunTotals) -> dict[str, str]:
    """Provenance to attach as tags: how each device was measured, where intensity came from."""
    out = {f"{PREFIX}.{dev}_method": m for dev, m in t.method.items()}
    if t.intensity is not None:
        out[f"{PREFIX}.intensity_provider"] = t.intensity.provider
        out[f"{PREFIX}.intensity_kind"] = t.intensity.kind
    return out


class TrackerLogger:
    """Cadence and totals; a subclass says how to find the run and how to write to it."""

    name = "tracker"

    def __init__(self, every_n_events: int = EVERY_N_EVENTS) -> None:
        self.totals = RunTotals()
        self.every_n_events = max(1, every_n_events)
        self._epoch: int | None = None
        self._since_log = 0
        self._said_no_run = False
        self.logged = 0  # calls to _write that reached a run (tests, diagnostics)

    # -- for subclasses ----------------------------------------------------------------
    def bind(self) -> bool:
        """Find the active run from the calling thread; True once one is bound."""
        raise NotImplementedError

    def _has_run(self) -> bool:
        raise NotImplementedError

    def _write(self, values: dict[str, float], step: int, final: bool) -> None:
        raise NotImplementedError

    def _no_run_hint(self) -> str:
        return ""

    # -- EventObserver -----------------------------------------------------------------
    def on_event(self, event: Mapping[str, Any]) -> None:
        epoch = event.get("epoch")
        if isinstance(epoch, int) and self._epoch is not None and epoch != self._epoch:
            self._log(step=self._epoch, final=False)  # the epoch before this sample ended
        self.totals.add(event)
        self._since_log += 1
        if isinstance(epoch, int):
            self._epoch = epoch
        elif self._since_log >= self.every_n_events:
            self._log(step=self.totals.seq or 0, final=False)

    def close(self) -> None:
        if self.totals.events:
            step = self._epoch if self._epoch is not None else (self.totals.seq or 0)
            self._log(step=step, final=True)

    def _log(self, step: int, final: bool) -> None:
        self._since_log = 0
        if not self._has_run():
            if not self._said_no_run:
                self._said_no_run = True
                print(
                    f"carbonpipe: no active {self.name} run; energy and CO2e are not logged "
                    f"to {self.name}{self._no_run_hint()}",
                    file=sys.stderr,
                    flush=True,
                )
            return
        self._write(figures(self.totals), step, final)
        self.logged += 1
