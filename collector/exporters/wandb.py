"""Log a run's energy (kWh) and gCO2e to the active W&B run (``pip install carbonpipe[wandb]``).

In-process only (``track(wandb=True)``, the framework callbacks): ``wandb.run`` is the
process's run, looked up again at each write, so a run started after the collector (a
Lightning ``WandbLogger`` creates it lazily) is still found. ``carbonpipe collect`` has no
``--wandb``: another process cannot add to the command's run (W&B writes a run from one
process), and a second run would sit beside the one the team looks at.

Writes use ``commit=False``: the figures join the row the training code commits next and
never advance W&B's step, so a script that logs with ``step=global_step`` loses nothing (W&B
drops rows whose step goes backwards). Charts use ``carbonpipe/step`` (epoch, else the event
seq) as their x axis (``define_metric``), and the final totals go to the run summary.
"""

from __future__ import annotations

from typing import Any

from collector.exporters.base import vendor
from collector.exporters.trackers import EVERY_N_EVENTS, PREFIX, TrackerLogger, metric_names

STEP = f"{PREFIX}/step"


class WandbLogger(TrackerLogger):
    name = "W&B"

    def __init__(self, every_n_events: int = EVERY_N_EVENTS) -> None:
        super().__init__(every_n_events)
        self._wandb = vendor("wandb", "wandb")
        self.run: Any = None
        self.bind()

    def bind(self) -> bool:
        if self.run is None and self._wandb.run is not None:
            self.run = self._wandb.run
            for key in metric_names():
                self.run.define_metric(key, step_metric=STEP)
        return self.run is not None

    def _has_run(self) -> bool:
        return self.bind()

    def _no_run_hint(self) -> str:
        return " (call wandb.init() before the collector starts or the run ends)"

    def _write(self, values: dict[str, float], step: int, final: bool) -> None:
        self.run.log({**values, STEP: step}, commit=False)
        if final:
            self.run.summary.update(values)
