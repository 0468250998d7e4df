"""Log a run's energy (kWh) and gCO2e to the active MLflow run (``pip install carbonpipe[mlflow]``).

In-process (``track(mlflow=True)``, the framework callbacks): the run is the caller's active
run, looked up when the logger is built. MLflow keeps the active run *per thread* and the
collector samples on its own thread, so the run id and tracking URI are captured in the
caller's thread and every write names the run explicitly (``MlflowClient.log_batch``). A run
started later (e.g. by ``report_to="mlflow"``) is picked up by the callbacks at the next epoch
(``collector.exporters.bind_pending``), or name it with ``MLFLOW_RUN_ID``.

``carbonpipe collect --mlflow`` runs in another process and cannot see the command's active
run. It logs to the run named by ``MLFLOW_RUN_ID``, or creates one (run name = carbonpipe
run id, experiment from ``MLFLOW_EXPERIMENT_ID``/``MLFLOW_EXPERIMENT_NAME``) and exports
``MLFLOW_RUN_ID`` to the command, whose ``mlflow.start_run()`` then resumes that same run:
training metrics and energy end up side by side. (MLflow's own documented behaviour:
``start_run`` uses ``MLFLOW_RUN_ID`` when no run id is passed.)
"""

from __future__ import annotations

import os
import sys
import time

from carbonpipe.core.secrets import redact_uri
from collector.exporters.base import vendor, wait_for_run
from collector.exporters.trackers import EVERY_N_EVENTS, TrackerLogger, labels

RUN_ID_ENV = "MLFLOW_RUN_ID"  # read by mlflow.start_run() itself


class MlflowLogger(TrackerLogger):
    name = "MLflow"

    def __init__(
        self,
        run_id: str | None = None,
        tracking_uri: str | None = None,
        every_n_events: int = EVERY_N_EVENTS,
    ) -> None:
        super().__init__(every_n_events)
        self._mlflow = vendor("mlflow", "mlflow")
        self.tracking_uri = tracking_uri or self._mlflow.get_tracking_uri()
        self.client = self._mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        self.run_id: str | None = run_id
        self.created = False  # this logger created the run, so it also ends it
        if not self.bind():
            wait_for_run(self)

    @classmethod
    def for_process(cls, run_name: str, every_n_events: int = EVERY_N_EVENTS) -> MlflowLogger:
        """For ``collect``: the run in ``MLFLOW_RUN_ID``, else a new one exported to the child."""
        logger = cls(run_id=os.environ.get(RUN_ID_ENV) or None, every_n_events=every_n_events)
        if logger.run_id is None:
            run = logger.client.create_run(
                logger._experiment_id(), run_name=run_name, tags={"carbonpipe.run_id": run_name}
            )
            logger.run_id, logger.created = run.info.run_id, True
            os.environ[RUN_ID_ENV] = run.info.run_id  # the command inherits it (cli builds env)
            print(f"carbonpipe: logging energy to MLflow run {run.info.run_id}", file=sys.stderr)
        return logger

    def _experiment_id(self) -> str:
        exp_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
        if exp_id:
            return exp_id
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
        if not name:
            return "0"  # MLflow's Default experiment
        exp = self.client.get_experiment_by_name(name)
        return str(exp.experiment_id) if exp else str(self.client.create_experiment(name))

    def bind(self) -> bool:
        if self.run_id is None:
            active = self._mlflow.active_run()  # the calling thread's run
            if active is not None:
                self.run_id = active.info.run_id
            else:
                self.run_id = os.environ.get(RUN_ID_ENV) or None
        return self.run_id is not None

    def _has_run(self) -> bool:
        return self.run_id is not None

    def _no_run_hint(self) -> str:
        return " (start one with mlflow.start_run() before the collector, or set MLFLOW_RUN_ID)"

    def _write(self, values: dict[str, float], step: int, final: bool) -> None:
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in values.items()]
        tags = [RunTag(k, v) for k, v in labels(self.totals).items()] if final else []
        assert self.run_id is not None
        try:
            self.client.log_batch(self.run_id, metrics=metrics, tags=tags)
        except Exception as exc:
            raise RuntimeError(f"MLflow log_batch failed: {redact_uri(str(exc))}") from None

    def close(self) -> None:
        super().close()
        # a run this logger created: end it unless the command did (FINISHED, FAILED: keep it)
        if (
            self.created
            and self.run_id is not None
            and self.client.get_run(self.run_id).info.status == "RUNNING"
        ):
            self.client.set_terminated(self.run_id)
