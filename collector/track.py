"""``carbonpipe.track``: run the collector beside a block of code or a function.

    with carbonpipe.track(run_id="r1", user_id="ana", model_name="resnet50"):
        train()

    @carbonpipe.track(run_id="r1", user_id="ana", model_name="resnet50")
    def train(): ...

Distributed jobs (DDP, torchrun): every rank may call ``track`` with the same run_id, but
only LOCAL_RANK 0 (or a process without LOCAL_RANK) starts the collector. It reads each
device of the host once (never once per rank); the other ranks join the run by run_id and
emit nothing. Note the CPU share is that of rank 0's process tree: launch with
``carbonpipe collect -- torchrun ...`` to charge all ranks' CPU time to the run.
Under ``carbonpipe collect -- CMD`` (CARBONPIPE_COLLECTOR_ACTIVE) ``track`` starts nothing
either: the outer collector already measures the command.

With no arguments the run id is generated, the user is the OS user and the model is the
script's name. After the block ``.result`` holds the run's figures (``collector.summary.
RunResult``: kWh per device and method, gCO2e and the intensity used), the same as
``carbonpipe collect`` prints. ``epoch_end()`` marks an epoch boundary; with ``total_epochs``
the run's total is predicted after ``predict_after_epochs`` epochs (printed on stderr, and
published in later events).
Where teams already look: ``prometheus_port=9464`` (or ``"0.0.0.0:9464"``) serves /metrics,
``mlflow=True`` / ``wandb=True`` log kWh and gCO2e to the active run, ``exporters=[...]`` adds
any ``EventObserver`` (``collector/exporters/``).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from collector import progress
from collector.observers import EventObserver
from collector.publish import Sink
from collector.summary import RunResult

F = TypeVar("F", bound=Callable[..., Any])


def is_measuring_rank(env: dict[str, str] | None = None) -> bool:
    env = dict(os.environ) if env is None else env
    if env.get("CARBONPIPE_COLLECTOR_ACTIVE"):
        return False
    return env.get("LOCAL_RANK", "0") in ("", "0")


class track:  # noqa: N801 - used like a function: carbonpipe.track(...)
    """Context manager and decorator; ``collector`` is None on ranks that only join."""

    def __init__(
        self,
        run_id: str | None = None,
        user_id: str | None = None,
        model_name: str | None = None,
        zone: str | None = None,
        interval_s: float | None = None,
        tags: dict[str, Any] | None = None,
        stdout: bool = False,
        sink: Sink | None = None,
        resume: bool = False,
        total_epochs: int | None = None,
        predict_after_epochs: int = 1,
        output: str | os.PathLike[str] | None = None,
        summary: bool = False,
        prometheus_port: int | str | None = None,
        mlflow: bool = False,
        wandb: bool = False,
        exporters: Sequence[EventObserver] = (),
        **settings_overrides: Any,
    ) -> None:
        import getpass

        model_name = model_name or Path(sys.argv[0] or "python").stem or "python"
        if run_id is None:
            from collector.cli import generated_run_id

            run_id = generated_run_id(model_name)
        self.run_id = run_id
        self.kwargs: dict[str, Any] = dict(
            run_id=run_id,
            user_id=user_id or getpass.getuser(),
            model_name=model_name,
            zone=zone,
            interval_s=interval_s,
            tags=tags,
            stdout=stdout,
            sink=sink,
            resume=resume,
            total_epochs=total_epochs,
            predict_after_epochs=predict_after_epochs,
        )
        self.output = Path(output) if output is not None else None
        self.summary = summary
        self.overrides = settings_overrides
        self.exporter_opts: dict[str, Any] = dict(
            prometheus_port=prometheus_port, mlflow=mlflow, wandb=wandb
        )
        self.exporters = list(exporters)
        self.observers: list[EventObserver] = []  # this entry's, exporters built on enter
        self.collector: Any = None
        self.left_in_spool = 0
        self.result: RunResult | None = None
        self._epochs_done = 0

    def __enter__(self) -> track:
        if not is_measuring_rank():
            return self
        from carbonpipe.core.config import get_settings, load_settings
        from collector.exporters import build_exporters
        from collector.runner import build_collector

        settings = load_settings(**self.overrides) if self.overrides else get_settings()
        self._settings = settings
        self.result = None
        self._epochs_done = 0
        progress.reset()  # a previous run's epoch in this process is not this run's
        total = self.kwargs["total_epochs"]
        if total:  # an epoch-based run: epoch 0 starts with the block (epoch_end counts up)
            progress.report(epoch=0, total_epochs=total)
        self.observers = [*build_exporters(**self.exporter_opts), *self.exporters]
        try:
            self.collector = build_collector(
                settings, pid=os.getpid(), observers=self.observers, **self.kwargs
            ).start()
        except BaseException:
            for obs in self.observers:
                obs.close()
            raise
        progress.add_waker(self.collector.sample_now)
        return self

    def epoch_end(self) -> None:
        """Call at the end of each epoch: the epoch count goes into events, and the collector
        samples at once so the first epochs' energy (the prediction's rate) is exact."""
        self._epochs_done += 1
        progress.report(epoch=self._epochs_done)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.collector is None:
            return
        progress.remove_waker(self.collector.sample_now)
        self.left_in_spool = self.collector.stop()
        self.result = self.collector.result()
        self.collector = None
        if self.result is not None and self.summary:
            from collector.summary import format_summary

            print(format_summary(self.result), file=sys.stderr, flush=True)
        if self.result is not None and self.output is not None:
            from collector.output import host_info, write_outputs

            host = host_info(self._settings.cloud_region)
            for err in write_outputs([self.output], self.result, host):
                print(f"carbonpipe track: {err}", file=sys.stderr, flush=True)

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
