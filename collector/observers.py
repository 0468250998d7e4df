"""Plug point for whatever watches a run's events as they are made (summary, Prometheus,
MLflow, W&B, prediction): each observer sees every event the collector publishes, in order.

An observer must not slow or stop the measurement: ``Collector`` calls it after publishing and
reports (never raises) what it raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class EventObserver(Protocol):
    def on_event(self, event: Mapping[str, Any]) -> None:
        """Called from the sampling thread with each published event (``end`` last)."""
        ...

    def close(self) -> None:
        """Called once after the ``end`` event (flush, unregister, stop a server)."""
        ...
