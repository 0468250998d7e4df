"""Hugging Face Trainer callback: ``Trainer(..., callbacks=[CarbonpipeCallback(...)])``."""

from __future__ import annotations

import functools
from typing import Any

from collector.callbacks import TrackingMixin


@functools.cache
def _build() -> type:
    from transformers import TrainerCallback

    class CarbonpipeCallback(TrackingMixin, TrainerCallback):
        """Epoch = int(state.epoch), step = state.global_step."""

        def __init__(self, **track_kwargs: Any) -> None:
            super().__init__()
            self._cp_init(track_kwargs)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                self._cp_start()

        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._cp_report(epoch=int(state.epoch or 0))

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._cp_report(epoch=int(state.epoch or 0), step=state.global_step)

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._cp_stop()

    return CarbonpipeCallback


def __getattr__(name: str) -> Any:
    if name == "CarbonpipeCallback":
        return _build()
    raise AttributeError(name)
