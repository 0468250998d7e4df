"""Training progress (epoch, step) handed from framework callbacks to the collector.

In-process (``track``) the collector reads the module state directly. Across processes
(``carbonpipe collect -- CMD``) the wrapper sets CARBONPIPE_PROGRESS_FILE for the child and
callbacks write "epoch=E step=S" there, at most every WRITE_EVERY_S, atomically (tmp + rename).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

from carbonpipe.core.fsutil import atomic_write_text

ENV_FILE = "CARBONPIPE_PROGRESS_FILE"
WRITE_EVERY_S = 0.5  # a sample is >= 0.2 s apart; writing faster buys nothing

_lock = threading.Lock()
_state: dict[str, int] = {}
_last_write = 0.0


def report(epoch: int | None = None, step: int | None = None, force: bool = False) -> None:
    """Record the current epoch/step (called by the framework callbacks)."""
    global _last_write
    with _lock:
        if epoch is not None:
            _state["epoch"] = max(0, int(epoch))
        if step is not None:
            _state["step"] = max(0, int(step))
        path = os.environ.get(ENV_FILE)
        now = time.monotonic()
        if not path or (not force and now - _last_write < WRITE_EVERY_S):
            return
        _last_write = now
        snapshot = dict(_state)
    with contextlib.suppress(OSError):  # progress is informational; never break training
        atomic_write_text(path, " ".join(f"{k}={v}" for k, v in sorted(snapshot.items())) + "\n")


def current(path: Path | None = None) -> dict[str, int]:
    """Latest epoch/step: from ``path`` (written by another process) else in-process."""
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
        if key in ("epoch", "step") and val.isdigit():
            out[key] = int(val)
    return out


def reset() -> None:
    with _lock:
        _state.clear()
