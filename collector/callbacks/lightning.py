"""PyTorch Lightning callback: ``Trainer(callbacks=[CarbonpipeCallback(...)])``."""

from __future__ import annotations

import functools
from typing import Any

from collector.callbacks import TrackingMixin


@functools.cache
def _build() -> type:
    try:
        from lightning.pytorch import Callback
    except ModuleNotFoundError:
        from pytorch_lightning import Callback  # the older package name

    class CarbonpipeCallback(TrackingMixin, Callback):
        """Epoch = trainer.current_epoch, step = trainer.global_step (optimizer steps)."""

        def __init__(self, **track_kwargs: Any) -> None:
            super().__init__()
            self._cp_init(track_kwargs)

        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            if trainer.global_rank == 0:
                self._cp_start()
                self._cp_total(getattr(trainer, "max_epochs", None))

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self._cp_report(epoch=trainer.current_epoch)

        def on_train_batch_end(self, trainer: Any, *args: Any, **kwargs: Any) -> None:
            self._cp_report(epoch=trainer.current_epoch, step=trainer.global_step)

        def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
            self._cp_stop()

    return CarbonpipeCallback


def __getattr__(name: str) -> Any:
    if name == "CarbonpipeCallback":
        return _build()
    raise AttributeError(name)
