"""Training progress (epoch, step) handed from framework callbacks to the collector.

In-process (``track``) the collector reads the module state directly. Across processes
(``carbonpipe collect -- CMD``) the wrapper sets CARBONPIPE_PROGRESS_FILE for the child and
callbacks write "epoch=E step=S [total_epochs=N]" there, at most every WRITE_EVERY_S (and at
once when the epoch changes), atomically (tmp + rename).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from carbonpipe.core.fsutil import atomic_write_text

ENV_FILE = "CARBONPIPE_PROGRESS_FILE"
WRITE_EVERY_S = 0.5  # a sample is >= 0.2 s apart; writing faster buys nothing

_lock = threading.Lock()
_state: dict[str, int] = {}
_last_write = 0.0
_wakers: list[Callable[[], None]] = []
KEYS = ("epoch", "step")  # what goes into events; total_epochs is for the prediction only


def add_waker(fn: Callable[[], None]) -> None:
    """``fn`` is called when the epoch changes (an in-process collector samples at once, so
    the epoch boundary falls exactly between two samples)."""
    with _lock:
        _wakers.append(fn)


def remove_waker(fn: Callable[[], None]) -> None:
    with _lock, contextlib.suppress(ValueError):
        _wakers.remove(fn)


def report(
    epoch: int | None = None,
    step: int | None = None,
    force: bool = False,
    total_epochs: int | None = None,
) -> None:
    """Record the current epoch/step (called by the framework callbacks) and, when known, the
    number of epochs the run is configured for (used to predict its total)."""
    global _last_write
    with _lock:
        new_epoch = epoch is not None and _state.get("epoch") != max(0, int(epoch))
        if epoch is not None:
            _state["epoch"] = max(0, int(epoch))
        if step is not None:
            _state["step"] = max(0, int(step))
        if total_epochs is not None and int(total_epochs) > 0:
            _state["total_epochs"] = int(total_epochs)
        wakers = list(_wakers) if new_epoch else []
        path = os.environ.get(ENV_FILE)
        now = time.monotonic()
        if not path or (not force and not new_epoch and now - _last_write < WRITE_EVERY_S):
            path = None
        else:
            _last_write = now
        snapshot = dict(_state)
    for fn in wakers:
        with contextlib.suppress(Exception):  # never break training
            fn()
    if path is None:
        return
    with contextlib.suppress(OSError):  # progress is informational; never break training
        atomic_write_text(path, " ".join(f"{k}={v}" for k, v in sorted(snapshot.items())) + "\n")


def _read(path: Path | None) -> dict[str, int]:
    if path is None:
        with _lock:
            return dict(_state)
    try:
        parts = path.read_text(encoding="ascii").split()
    except OSError:
        return {}
    out: dict[str, int] = {}
    for part in parts:
        key, _, val = part.partition("=")
        if val.isdigit():
            out[key] = int(val)
    return out


def current(path: Path | None = None) -> dict[str, int]:
    """Latest epoch/step: from ``path`` (written by another process) else in-process."""
    return {k: v for k, v in _read(path).items() if k in KEYS}


def total_epochs(path: Path | None = None) -> int | None:
    """The configured number of epochs, when a callback or ``track`` said it."""
    return _read(path).get("total_epochs") or None


def reset() -> None:
    with _lock:
        _state.clear()
