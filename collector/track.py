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

Where teams already look: ``prometheus_port=9464`` (or ``"0.0.0.0:9464"``) serves /metrics,
``mlflow=True`` / ``wandb=True`` log kWh and gCO2e to the active run, ``exporters=[...]`` adds
any ``EventObserver`` (``collector/exporters/``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from collector.observers import EventObserver
from collector.publish import Sink

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
        run_id: str,
        user_id: str,
        model_name: str,
        zone: str | None = None,
        interval_s: float | None = None,
        tags: dict[str, Any] | None = None,
        stdout: bool = False,
        sink: Sink | None = None,
        prometheus_port: int | str | None = None,
        mlflow: bool = False,
        wandb: bool = False,
        exporters: Sequence[EventObserver] = (),
        **settings_overrides: Any,
    ) -> None:
        self.kwargs: dict[str, Any] = dict(
            run_id=run_id,
            user_id=user_id,
            model_name=model_name,
            zone=zone,
            interval_s=interval_s,
            tags=tags,
            stdout=stdout,
            sink=sink,
        )
        self.overrides = settings_overrides
        self.exporter_opts: dict[str, Any] = dict(
            prometheus_port=prometheus_port, mlflow=mlflow, wandb=wandb
        )
        self.exporters = list(exporters)
        self.observers: list[EventObserver] = []  # this entry's, exporters built on enter
        self.collector: Any = None
        self.left_in_spool = 0

    def __enter__(self) -> track:
        if not is_measuring_rank():
            return self
        from carbonpipe.core.config import get_settings, load_settings
        from collector.exporters import build_exporters
        from collector.runner import build_collector

        settings = load_settings(**self.overrides) if self.overrides else get_settings()
        self.observers = [*build_exporters(**self.exporter_opts), *self.exporters]
        try:
            self.collector = build_collector(
                settings, pid=os.getpid(), observers=self.observers, **self.kwargs
            ).start()
        except BaseException:
            for obs in self.observers:
                obs.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.collector is not None:
            self.left_in_spool = self.collector.stop()
            self.collector = None

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
