"""Exporters: show a run's energy and gCO2e where teams already look (Prometheus, MLflow, W&B).

Each exporter is an ``EventObserver`` (``collector/observers.py``): it sees every published
event and is closed after the ``end`` event. They are adapters at the edge: each imports its
vendor library only when it is built, and says which extra to install when that library is
missing, so the measuring code never imports one and a plain install needs none of them.

    carbonpipe collect --prometheus-port 9464 --mlflow ... -- python train.py
    with carbonpipe.track(..., prometheus_port=9464, mlflow=True, wandb=True): train()
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import Any

from carbonpipe.core.errors import ConfigError
from collector.observers import EventObserver

_pending_lock = threading.Lock()
_pending: list[Any] = []  # tracker loggers still looking for an active run (see bind_pending)


class MissingExtraError(ConfigError, ImportError):
    """A vendor library is not installed (an ImportError, and a clean CLI error)."""


def vendor(module: str, extra: str) -> ModuleType:
    """Import a vendor library or fail with the one command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{module} is not installed: pip install 'carbonpipe[{extra}]' ({exc})"
        ) from exc


def wait_for_run(logger: Any) -> None:
    """Remember a logger whose tracker had no active run yet (``bind_pending`` retries)."""
    with _pending_lock:
        _pending.append(logger)


def bind_pending() -> None:
    """Let waiting loggers pick up the caller's active run; cheap when none waits.

    MLflow keeps the active run per thread, and the collector's sampling thread never has
    one, so the training thread (the framework callbacks) calls this at epoch boundaries:
    a run started after the collector (``report_to="mlflow"``) is still found.
    """
    if not _pending:
        return
    with _pending_lock:
        _pending[:] = [lg for lg in _pending if not lg.bind()]


def build_exporters(
    prometheus_port: int | str | None = None,
    mlflow: bool = False,
    wandb: bool = False,
    mlflow_run_id: str | None = None,
) -> list[EventObserver]:
    """The exporters asked for, started; ``prometheus_port`` is ``PORT`` or ``ADDR:PORT``."""
    out: list[EventObserver] = []
    try:
        if prometheus_port is not None:
            from collector.exporters.prometheus import PrometheusExporter

            out.append(PrometheusExporter.serve(prometheus_port))
        if mlflow:
            from collector.exporters.mlflow import MlflowLogger

            out.append(MlflowLogger(run_id=mlflow_run_id))
        if wandb:
            from collector.exporters.wandb import WandbLogger

            out.append(WandbLogger())
    except BaseException:
        for obs in out:  # do not leave a port bound when a later exporter fails
            obs.close()
        raise
    return out
