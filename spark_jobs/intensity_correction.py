"""Late-arriving intensity: windows charged the fallback are re-charged once a provider's value
for their time arrives (reliability review M6). Pure: the hot store applies what this plans.

An event whose zone has no segment in force at its timestamp is charged the zone's static
average (``intensity_kind = 'fallback'``). Each window records what that cost, as declared
aggregates (``carbonpipe.core.aggregates``): ``fallback_kwh``, ``fallback_co2_g`` (the grams it
was charged, whatever fallback value applied) and ``fallback_first_ts_s``/``fallback_last_ts_s``
(the fallback events' timestamps). When one segment of kind actual or forecast holds all those
timestamps, the correction is exact: ``co2_g += fallback_kwh * g_per_kwh - fallback_co2_g``, the
fallback figures go to zero and the segment's provider joins the window's providers.

Windows are ``window_s``-aligned (60 s) inside a 5-minute slot, and provider segments are
5/15/30/60-minute aligned, so one segment holds a window's fallback events in the common case.
A window whose fallback events straddle a segment boundary that is not on a window boundary is
left as it is (still flagged fallback), because its aggregates cannot say which events fell on
which side: a wrong correction would be worse than a flagged fallback.

Exactly once: a correction is part of a micro-batch's versioned documents (``key|b<batch>``),
computed from the version before that batch, and recorded on the window (``late_intensity``).
A replayed batch finds its versions already written and applies nothing again; its run totals
take the corrections from the window's record, so windows and runs agree even if the feed
changed in between. A corrected window has no fallback left, so no later batch corrects it again.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from spark_jobs.reference import STATIC_PROVIDER, WORLD_PROVIDER, Segment

# A window with no fallback energy left has none of these among its providers any more.
FALLBACK_PROVIDERS = frozenset({STATIC_PROVIDER, WORLD_PROVIDER})
CORRECTING_KINDS = frozenset({"actual", "forecast"})  # a fallback segment corrects nothing


@dataclass(frozen=True, slots=True)
class Correction:
    """One window's fallback energy re-charged at a late segment's intensity."""

    key: str
    run_id: str
    batch_id: int  # the micro-batch whose version applies it
    kwh: float  # the window's fallback_kwh
    charged_g: float  # the window's fallback_co2_g: what that energy was charged
    g_per_kwh: float
    provider: str
    kind: str

    def delta(self) -> dict[str, float]:
        """The correction as a partial of summed aggregates (merged like a batch's partial)."""
        return {
            "co2_g": self.kwh * self.g_per_kwh - self.charged_g,
            "fallback_kwh": -self.kwh,
            "fallback_co2_g": -self.charged_g,
            "forecast_kwh": self.kwh if self.kind == "forecast" else 0.0,
        }

    def record(self) -> dict[str, Any]:
        """What the window keeps of it (``late_intensity``): provenance, and the replay's source."""
        return {
            "batch_id": self.batch_id, "kwh": self.kwh, "charged_g": self.charged_g,
            "g_per_kwh": self.g_per_kwh, "provider": self.provider, "kind": self.kind,
        }  # fmt: skip

    @classmethod
    def from_record(cls, key: str, run_id: str, rec: Mapping[str, Any]) -> Correction:
        return cls(key, run_id, int(rec["batch_id"]), float(rec["kwh"]),
                   float(rec["charged_g"]), float(rec["g_per_kwh"]), str(rec["provider"]),
                   str(rec["kind"]))  # fmt: skip


class SegmentIndex:
    """Segments per zone, sorted: which one holds a span of time (a bisection)."""

    def __init__(self, segments: Iterable[Segment] = ()) -> None:
        by_zone: dict[str, list[Segment]] = {}
        for seg in segments:
            by_zone.setdefault(seg.zone, []).append(seg)
        self._segs = {z: sorted(s, key=lambda x: x.start_s) for z, s in by_zone.items()}
        self._starts = {z: [s.start_s for s in segs] for z, segs in self._segs.items()}

    def holding(self, zone: str, first_s: int, last_s: int) -> Segment | None:
        """The segment whose [start, end) holds both timestamps, if one does."""
        starts = self._starts.get(zone)
        if not starts:
            return None
        i = bisect.bisect_right(starts, first_s) - 1
        if i < 0:
            return None
        seg = self._segs[zone][i]
        return seg if seg.start_s <= first_s and last_s < seg.end_s else None

    def touches(self, zone: str, lo_s: int, hi_s: int) -> bool:
        """Whether any segment overlaps [lo, hi): a cheap test before a window is looked up."""
        starts = self._starts.get(zone)
        if not starts:
            return False
        i = bisect.bisect_left(starts, hi_s)
        return any(s.end_s > lo_s for s in self._segs[zone][max(0, i - 1) : i])


def plan(window: Mapping[str, Any], index: SegmentIndex, batch_id: int) -> Correction | None:
    """The correction a window's newest version calls for, or None (nothing, or straddling)."""
    kwh = window.get("fallback_kwh") or 0.0
    first, last = window.get("fallback_first_ts_s"), window.get("fallback_last_ts_s")
    if kwh <= 0 or first is None or last is None:
        return None
    seg = index.holding(window["zone"], int(first), int(last))
    if seg is None or seg.kind not in CORRECTING_KINDS:
        return None
    return Correction(window["key"], window["run_id"], batch_id, kwh,
                      window.get("fallback_co2_g") or 0.0, seg.g_per_kwh, seg.provider,
                      seg.kind)  # fmt: skip


def per_run(corrections: Iterable[Correction]) -> dict[str, list[Correction]]:
    out: dict[str, list[Correction]] = {}
    for c in corrections:
        out.setdefault(c.run_id, []).append(c)
    return out


def settle(doc: dict[str, Any], added_providers: Iterable[str]) -> dict[str, Any]:
    """After deltas were merged into ``doc``: with no fallback energy left (within rounding of
    a sum over windows), the fallback figures are exactly zero and its labels go."""
    providers = set(doc.get("intensity_providers") or []) | set(added_providers)
    energy = doc.get("energy_kwh") or 0.0
    if abs(doc.get("fallback_kwh") or 0.0) <= 1e-9 * max(energy, 1e-12):
        doc.update(fallback_kwh=0.0, fallback_co2_g=0.0,
                   fallback_first_ts_s=None, fallback_last_ts_s=None)  # fmt: skip
        providers -= FALLBACK_PROVIDERS
    doc["intensity_providers"] = sorted(providers)
    return doc


@dataclass
class Pending:
    zone: str
    window_start_s: int
    window_end_s: int


class LateIntensity:
    """The driver's side of the correction: which windows still carry fallback energy (bounded:
    only those the lateness window still holds), and the segments known now.

    ``horizon_s`` is the watermark of the batch being processed: a window ending at or before
    it no longer waits for its intensity (it stays flagged fallback).
    """

    def __init__(self) -> None:
        self.index = SegmentIndex()
        self.horizon_s: float | None = None
        self.pending: dict[str, Pending] = {}
        self.loaded = False  # pending windows read back from the hot store (once per process)

    def use(self, segments: Iterable[Segment]) -> None:
        self.index = SegmentIndex(segments)

    def track(self, docs: Iterable[Mapping[str, Any]]) -> None:
        """Window versions just written (or read at start): pending while fallback is left."""
        for d in docs:
            if (d.get("fallback_kwh") or 0.0) > 0:
                end = int(d["window_start_s"]) + int(d["window_s"])
                self.pending[d["key"]] = Pending(d["zone"], int(d["window_start_s"]), end)
            else:
                self.pending.pop(d["key"], None)

    def candidates(self) -> list[str]:
        """Pending windows a known segment overlaps (the rest cost nothing per batch)."""
        h = self.horizon_s
        if h is not None:
            for key in [k for k, p in self.pending.items() if p.window_end_s <= h]:
                del self.pending[key]
        return [k for k, p in self.pending.items()
                if self.index.touches(p.zone, p.window_start_s, p.window_end_s)]  # fmt: skip
