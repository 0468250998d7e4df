"""Pure arithmetic of energy counters and power samples (no I/O, easy to test).

Kept apart from the readers so that the rules (wrap-around, attribution, integration) are
the same for every source and checked once.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise


def counter_delta(prev: int, cur: int, max_range: int | None) -> int:
    """Increase of a monotonic counter that wraps at ``max_range`` (RAPL's max_energy_range_uj).

    A counter that went down wrapped once (the interval is far shorter than a wrap period:
    ~60 s at 4 kW for a 32-bit uJ counter, hours for real RAPL ranges). Without a known
    range a decrease is treated as a reset and counts from zero.
    """
    if cur >= prev:
        return cur - prev
    if max_range and max_range > 0:
        return (max_range - prev) + cur
    return cur


def cpu_share(tree_cpu_s: float, host_busy_cpu_s: float) -> float:
    """The process tree's share of the host's busy CPU time over an interval, in [0, 1]."""
    if host_busy_cpu_s <= 0 or tree_cpu_s <= 0:
        return 0.0
    return min(1.0, tree_cpu_s / host_busy_cpu_s)


def utilisation(busy_s: float, total_s: float) -> float:
    """Busy fraction of all CPUs over an interval, in [0, 1]."""
    if total_s <= 0:
        return 0.0
    return min(1.0, max(0.0, busy_s / total_s))


def trapezoid_j(samples: Sequence[tuple[float, float]]) -> float:
    """Energy (J) from (monotonic time s, power W) samples by the trapezoid rule."""
    total = 0.0
    for (t0, p0), (t1, p1) in pairwise(samples):
        if t1 > t0:
            total += (p0 + p1) / 2.0 * (t1 - t0)
    return total


def mean_power(energy_j: float, interval_s: float) -> float:
    return energy_j / interval_s if interval_s > 0 else 0.0


def tdp_x_util_j(tdp_w: float, util: float, interval_s: float) -> float:
    """Estimated CPU package energy: TDP × utilisation × time (the model named in events)."""
    return max(0.0, tdp_w) * max(0.0, min(1.0, util)) * max(0.0, interval_s)


def ram_model_j(w_per_gb: float, used_bytes: float, interval_s: float) -> float:
    """Estimated DRAM energy: W per GB × GiB in use (module sizes are binary GB) × time."""
    return max(0.0, w_per_gb) * max(0.0, used_bytes) / 2**30 * max(0.0, interval_s)
