"""Units and provenance labels shared by the collector, the job, the readers and the dashboard."""

from __future__ import annotations

from typing import Literal

J_PER_KWH = 3.6e6  # exact: 1 kWh = 1000 W x 3600 s
S_PER_H = 3600.0

# The device kinds every event reports energy for (``<device>_energy_j``, ``<device>_method``).
DEVICES = ("cpu", "gpu", "ram")

# How an energy figure was obtained: read from a hardware counter, or computed by a named model.
Method = Literal["measured", "estimated"]
METHODS: tuple[Method, ...] = ("measured", "estimated")
