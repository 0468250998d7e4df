"""Cooperative pause for training loops: ``pause_gate()`` between steps.

SIGSTOP freezes a process group from outside, which is safe for CPU jobs but can upset GPU
collectives (NCCL timeouts) or leave a dataloader mid-request. In ``--pause-mode gate`` the
scheduler instead writes the desired state to the file in ``$CARBONPIPE_SCHEDULE_GATE``; a
loop that calls :func:`pause_gate` between steps checkpoints (hooks) and blocks while paused.
Outside a scheduled run the gate is a cheap no-op.

The gate file names the scheduler that wrote it (pid and start time). A 'pause' whose writer
is gone (SIGKILLed, crashed, the machine's session ended) reads as 'run': nobody is left to
write 'run' again, and a job blocked forever on a dead scheduler's word is worse than one that
finishes in a greener-or-not hour.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from carbonpipe.core.fsutil import atomic_write_text

GATE_ENV = "CARBONPIPE_SCHEDULE_GATE"
DECISION_ENV = "CARBONPIPE_SCHEDULE_DECISION_ID"

_hooks: list[Callable[[], None]] = []


def on_pause(hook: Callable[[], None]) -> Callable[[], None]:
    """Register a checkpoint hook run once each time the gate pauses (usable as decorator)."""
    _hooks.append(hook)
    return hook


def gate_state(path: str | os.PathLike[str] | None = None) -> str:
    """'run' or 'pause' as last written by the scheduler; 'run' when there is no gate, or when
    the scheduler that wrote 'pause' no longer runs (same pid and start time)."""
    p = path or os.environ.get(GATE_ENV)
    if not p:
        return "run"
    try:
        data: dict[str, Any] = json.loads(Path(p).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "run"
    if data.get("state") != "pause":
        return "run"
    from carbonpipe.core.procid import ProcessId  # psutil: only once a gate says 'pause'

    try:
        owner = ProcessId(int(data["owner_pid"]), float(data["owner_start"]))
    except (KeyError, TypeError, ValueError):
        return "pause"  # written by hand or by an older scheduler: obey it as before
    return "pause" if owner.alive() is not None else "run"


def write_gate(path: str | os.PathLike[str], state: str, **extra: Any) -> None:
    """Scheduler side: atomically publish the state the loop should obey, signed with this
    process's identity so that a 'pause' dies with the process that wrote it."""
    from carbonpipe.core.procid import ProcessId

    me = ProcessId.of(os.getpid())
    atomic_write_text(path, json.dumps({"state": state, "at": time.time(),
                                        "owner_pid": me.pid, "owner_start": me.create_time,
                                        **extra}))  # fmt: skip


def pause_gate(
    checkpoint: Callable[[], None] | None = None, *, poll_s: float = 0.5,
    path: str | os.PathLike[str] | None = None, sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Block while the scheduler says 'pause'; returns the seconds spent paused.

    ``checkpoint`` (and hooks from :func:`on_pause`) run once before blocking, so the job can
    be resumed even if the machine goes away during the pause.
    """
    if gate_state(path) != "pause":
        return 0.0
    for hook in ([checkpoint] if checkpoint else []) + list(_hooks):
        hook()
    t0 = time.monotonic()
    while gate_state(path) == "pause":
        sleep(poll_s)
    return time.monotonic() - t0


def _callback_base() -> type:
    for mod, name in (("lightning.pytorch.callbacks", "Callback"),
                      ("pytorch_lightning.callbacks", "Callback")):
        try:
            module = __import__(mod, fromlist=[name])
            base: type = getattr(module, name)
            return base
        except ImportError:
            continue
    return object


class _LazyCallback:
    """Resolves the Lightning base class on first use, so importing needs no lightning."""

    _cls: type | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._cls is None:
            base = _callback_base()

            def on_train_batch_end(self: Any, trainer: Any, *_: Any, **__: Any) -> None:
                ckpt = None
                if self.checkpoint_path:
                    path = self.checkpoint_path

                    def ckpt() -> None:
                        trainer.save_checkpoint(path)
                pause_gate(ckpt, poll_s=self.poll_s)

            def init(self: Any, checkpoint_path: str | None = None, poll_s: float = 0.5) -> None:
                if base is not object:
                    super(self._carbon_cls, self).__init__()
                self.checkpoint_path = checkpoint_path
                self.poll_s = poll_s

            cls = type("CarbonPauseCallback", (base,), {
                "__init__": init, "on_train_batch_end": on_train_batch_end,
                "__doc__": "Lightning callback: obey the carbon scheduler's pause gate."})
            cls._carbon_cls = cls  # type: ignore[attr-defined]
            self._cls = cls
        return self._cls(*args, **kwargs)


CarbonPauseCallback = _LazyCallback()
"""``trainer = Trainer(callbacks=[CarbonPauseCallback(checkpoint_path="pause.ckpt")])``."""
