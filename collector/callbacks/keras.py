"""Keras callback: ``model.fit(..., callbacks=[CarbonpipeCallback(...)])``."""

from __future__ import annotations

import functools
from typing import Any

from collector.callbacks import TrackingMixin


@functools.cache
def _build() -> type:
    try:
        from keras.callbacks import Callback
    except ModuleNotFoundError:
        from tensorflow.keras.callbacks import Callback  # Keras 2 inside TensorFlow

    class CarbonpipeCallback(TrackingMixin, Callback):
        """Epoch from Keras, step = training batches seen across epochs."""

        def __init__(self, **track_kwargs: Any) -> None:
            super().__init__()
            self._cp_init(track_kwargs)
            self._cp_epoch = 0

        def on_train_begin(self, logs: Any = None) -> None:
            self._cp_start()
            self._cp_total((getattr(self, "params", None) or {}).get("epochs"))

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._cp_epoch = epoch
            self._cp_report(epoch=epoch)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self._cp_step += 1
            self._cp_report(epoch=self._cp_epoch, step=self._cp_step)

        def on_train_end(self, logs: Any = None) -> None:
            self._cp_stop()

    return CarbonpipeCallback


def __getattr__(name: str) -> Any:
    if name == "CarbonpipeCallback":
        return _build()
    raise AttributeError(name)
