"""Exporters: show a run's energy and gCO2e where teams already look (Prometheus, MLflow, W&B).

Each exporter is an ``EventObserver`` (``collector/observers.py``): it sees every published
event and is closed after the ``end`` event. They are adapters at the edge: each imports its
vendor library only when it is built, and says which extra to install when that library is
missing, so the measuring code never imports one and a plain install needs none of them.

    carbonpipe collect --prometheus-port 9464 --mlflow ... -- python train.py
    with carbonpipe.track(..., prometheus_port=9464, mlflow=True, wandb=True): train()
"""

from __future__ import annotations

from collector.exporters.base import MissingExtraError, bind_pending, vendor, wait_for_run
from collector.observers import EventObserver

__all__ = ["MissingExtraError", "bind_pending", "build_exporters", "vendor", "wait_for_run"]


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
