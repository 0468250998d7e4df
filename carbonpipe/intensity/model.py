"""Records shared by every intensity provider, the feeder, the scheduler and the Spark job."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from carbonpipe.core.timeutil import utc_iso
from carbonpipe.intensity.errors import ImplausibleValue

Kind = Literal["actual", "forecast", "fallback"]
Signal = Literal["average", "marginal"]

# 1 lb/MWh = 453.59237 g / 1000 kWh (exact, by the definition of the avoirdupois pound).
LBS_PER_MWH_TO_G_PER_KWH = 0.45359237
# No grid, average or marginal, comes near this: lignite plants emit ~1,100-1,300 g/kWh over
# their life cycle. A larger value is a unit mix-up or a corrupt answer, and one such value
# would steer every scheduling decision (the window policy takes the minimum).
MAX_G_PER_KWH = 2_000.0


@dataclass(frozen=True, slots=True)
class IntensityPoint:
    """Carbon intensity of ``zone`` over [start, end), with where it came from.

    ``provider`` is one of uk, electricitymaps, watttime, trace, static. ``kind`` says whether
    it is an actual (measured/reported) value, a forecast, or a fallback average; ``signal``
    separates average intensities from WattTime's marginal (MOER) ones, never mixed silently.
    """

    zone: str
    start: datetime
    end: datetime
    carbon_intensity_g_per_kwh: float
    provider: str
    kind: Kind
    signal: Signal = "average"
    source: str = ""
    perfect_foresight: bool = False  # a "forecast" replayed from a trace
    replayed: bool = False  # value taken from another time of a trace (hour-of-year replay)

    def __post_init__(self) -> None:
        """Every provider's values pass here: NaN, negative and absurd ones never reach the
        feed, the job or the scheduler, and the error names the provider."""
        v = self.carbon_intensity_g_per_kwh
        if not 0.0 <= v <= MAX_G_PER_KWH:  # also False for NaN
            raise ImplausibleValue(
                self.provider,
                f"carbon intensity {v!r} g/kWh for {self.zone} at {utc_iso(self.start)} is not "
                f"in [0, {MAX_G_PER_KWH:g}]: value rejected",
            )

    def to_event(self) -> dict[str, Any]:
        """The grid.intensity topic record (schemas/grid_intensity.v1.json)."""
        d = asdict(self)
        d["start"] = utc_iso(self.start)
        d["end"] = utc_iso(self.end)
        d["schema_version"] = 1
        for flag in ("perfect_foresight", "replayed"):
            if not d[flag]:
                d.pop(flag)
        return d
