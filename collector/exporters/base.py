"""What every exporter shares: lazy vendor imports, and loggers still waiting for a run."""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import Any

from carbonpipe.core.errors import ConfigError

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
