"""Framework callbacks that put epoch and step into events (and can start the collector).

Each module imports its framework only when ``CarbonpipeCallback`` is first accessed, so
``import collector.callbacks.keras`` works on hosts without Keras.
Pass run_id/user_id/model_name to have the callback run ``track`` for the fit; pass
nothing when the job is already measured (``carbonpipe collect -- CMD`` or ``track``).
Each callback also reports the fit's configured number of epochs, so the collector can
predict the run's total after the first epoch(s) (``collector.predict``).
``mlflow=True`` / ``wandb=True`` / ``prometheus_port=N`` go to ``track`` like the rest.
"""

from __future__ import annotations

from typing import Any

from collector import progress
from collector.exporters.base import bind_pending


class TrackingMixin:
    """Shared by all callbacks: optional collector for the fit, progress reporting."""

    def _cp_init(self, track_kwargs: dict[str, Any]) -> None:
        self._cp_kwargs = track_kwargs
        self._cp_track: Any = None
        self._cp_step = 0

    def _cp_start(self) -> None:
        if self._cp_kwargs.get("run_id") and self._cp_track is None:
            from collector.track import track

            self._cp_track = track(**self._cp_kwargs)
            self._cp_track.__enter__()

    def _cp_stop(self) -> None:
        progress.report(force=True)
        if self._cp_track is not None:
            self._cp_track.__exit__(None, None, None)
            self._cp_track = None

    @staticmethod
    def _cp_report(epoch: int | None = None, step: int | None = None) -> None:
        progress.report(epoch=epoch, step=step)
        bind_pending()  # mlflow=True/wandb=True: a run started after the collector (per thread)

    @staticmethod
    def _cp_total(total_epochs: Any) -> None:
        """The fit's configured epochs, for the prediction (ignored when unknown or open)."""
        try:
            n = int(total_epochs)
        except (TypeError, ValueError):
            return
        if n > 0:
            progress.report(total_epochs=n, force=True)
