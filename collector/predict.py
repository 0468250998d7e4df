"""Predict a whole run's energy and gCO2e from its first epochs. Pure (no I/O).

The rule: energy spent before the first epoch began (start-up, data loading) is counted once;
the energy of the first ``after_epochs`` epochs gives a rate in kWh per epoch, and the rest of
the ``total_epochs`` are charged at that rate:

    predicted_kwh = setup_kwh + rate_kwh_per_epoch x total_epochs

Epochs are read from the events' ``epoch`` tag (the index of the epoch in progress, as the
framework callbacks and ``track().epoch_end()`` report it): the first event whose ``epoch`` is
``after_epochs`` or more closes the measured epochs. In-process (``track``) an epoch boundary
triggers a sample at once, so the rate is exact; across processes the boundary is seen at the
next sample, so the rate can include up to one sampling interval of the next epoch
(error <= interval / (after_epochs x epoch duration)).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from carbonpipe.core.units import DEVICES, J_PER_KWH

ENERGY_FIELDS = tuple(f"{d}_energy_j" for d in DEVICES)


@dataclass(frozen=True)
class Prediction:
    """Published in events under these names (schemas/metric_event.v1.json)."""

    predicted_energy_kwh: float
    predicted_co2_g: float
    predicted_epochs: int
    predicted_after_epochs: int
    predicted_kwh_per_epoch: float
    intensity_g_per_kwh: float

    def event_fields(self) -> dict[str, Any]:
        """What goes into every later event (the hot store keeps the last one)."""
        d = asdict(self)
        d.pop("intensity_g_per_kwh")
        return d

    def line(self) -> str:
        return (
            f"carbonpipe: predicted {self.predicted_energy_kwh:.4g} kWh / "
            f"{self.predicted_co2_g:.4g} gCO2e for {self.predicted_epochs} epochs "
            f"(measured {self.predicted_kwh_per_epoch:.6g} kWh/epoch over the first "
            f"{self.predicted_after_epochs} epoch(s), at {self.intensity_g_per_kwh:g} gCO2e/kWh)"
        )


def event_energy_j(event: Mapping[str, Any]) -> float:
    return sum(float(event.get(k) or 0.0) for k in ENERGY_FIELDS)


class Predictor:
    """Fed every event in order; ``observe`` returns the prediction once, when it is made."""

    def __init__(self, intensity_g_per_kwh: float, after_epochs: int = 1) -> None:
        if after_epochs < 1:
            raise ValueError("after_epochs must be >= 1")
        self.intensity_g_per_kwh = intensity_g_per_kwh
        self.after_epochs = after_epochs
        self.prediction: Prediction | None = None
        self._setup_j = 0.0
        self._epochs_j = 0.0
        self._started = False
        self._rate_kwh: float | None = None  # frozen at the boundary, even before a total

    def observe(self, event: Mapping[str, Any], total_epochs: int | None) -> Prediction | None:
        if self.prediction is not None:
            return None
        if self._rate_kwh is None:
            epoch = event.get("epoch")
            j = event_energy_j(event)
            if epoch is None and not self._started:
                self._setup_j += j
                return None
            self._started = True  # a tag-less event mid-run still belongs to the epochs
            self._epochs_j += j
            if epoch is None or int(epoch) < self.after_epochs:
                return None
            self._rate_kwh = self._epochs_j / J_PER_KWH / self.after_epochs
        if not total_epochs or total_epochs < 1:
            return None  # the rate is kept; predicted once the total is known
        kwh = self._setup_j / J_PER_KWH + self._rate_kwh * total_epochs
        self.prediction = Prediction(
            predicted_energy_kwh=kwh,
            predicted_co2_g=kwh * self.intensity_g_per_kwh,
            predicted_epochs=int(total_epochs),
            predicted_after_epochs=self.after_epochs,
            predicted_kwh_per_epoch=self._rate_kwh,
            intensity_g_per_kwh=self.intensity_g_per_kwh,
        )
        return self.prediction
