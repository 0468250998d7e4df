"""Carbon-aware scheduling: pure policies, forecast adapters, a runner and an evaluator.

``pause_gate``/``on_pause``/``CarbonPauseCallback`` import nothing heavy (training loops call
them); everything else is loaded on first use so ``import carbonpipe.scheduling`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from carbonpipe.scheduling.gate import CarbonPauseCallback, gate_state, on_pause, pause_gate

_LAZY = {
    "Forecast": "policies", "Plan": "policies", "AllowedHours": "policies",
    "ScheduleError": "policies", "best_window": "policies", "interruptible": "policies",
    "threshold_defer": "policies", "multizone": "policies",
    "expected_vs_measured": "decisions", "evaluate": "evaluate", "run_plan": "runner",
    "ScaledClock": "runner", "SystemClock": "runner", "collector_command": "runner",
}

__all__ = ["CarbonPauseCallback", "gate_state", "on_pause", "pause_gate", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"carbonpipe.scheduling.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(name)
