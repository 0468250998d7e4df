"""Hugging Face Trainer callback: ``Trainer(..., callbacks=[CarbonpipeCallback(...)])``."""

from __future__ import annotations

import functools
from typing import Any

from collector.callbacks import TrackingMixin


@functools.cache
def _build() -> type:
    from transformers import TrainerCallback

    class CarbonpipeCallback(TrackingMixin, TrainerCallback):
        """Epoch = index of the epoch in progress (0-based), step = state.global_step.

        state.epoch is fractional progress (1.25 = a quarter into the 2nd epoch) and reaches
        2.0 at the last step of epoch index 1, so the index is taken at epoch begin.
        """

        def __init__(self, **track_kwargs: Any) -> None:
            super().__init__()
            self._cp_init(track_kwargs)
            self._cp_epoch = 0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                self._cp_start()
                self._cp_total(getattr(state, "num_train_epochs", None) or args.num_train_epochs)

        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._cp_epoch = int(state.epoch or 0)
            self._cp_report(epoch=self._cp_epoch)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._cp_report(epoch=self._cp_epoch, step=state.global_step)

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._cp_stop()

    return CarbonpipeCallback


def __getattr__(name: str) -> Any:
    if name == "CarbonpipeCallback":
        return _build()
    raise AttributeError(name)
