"""Pure scheduling policies over a carbon-intensity forecast (no I/O, no clock).

A forecast is a regular grid: slot i covers [starts[i], starts[i] + step_s) with a mean
intensity values[i] (gCO2e/kWh). Time 0 of a decision is starts[0] ("now"); a job may start
only at slot boundaries. Every policy works on a *batch* of forecast rows (jobs x slots) with
cumulative sums / sorting, so the evaluator can place a year of hourly jobs in one numpy call;
the single-forecast functions (``best_window``, ``interruptible``, ...) wrap the batch cores.

The output of a core is an allocation matrix X (jobs x slots): X[j, i] in [0, 1] is the share
of slot i the job runs in, so expected emissions per kW = sum(X * values) * step_h, whatever the
policy. Durations that are not a multiple of the step give one partial slot (its *first* part).

Why one module of ~500 lines: the types (``Forecast``, ``Plan``), the batch cores and their
single-forecast wrappers are one cohesive, pure unit; each wrapper sits beside the core it
wraps, and ``tests/carbonpipe/scheduling/test_schedule_properties.py`` checks every core
against a brute-force twin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from carbonpipe.core.errors import CarbonpipeError
from carbonpipe.core.timeutil import from_datetime64, utc_iso_s

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
TimeArray = npt.NDArray[np.datetime64]

PolicyName = Literal["threshold", "window", "interruptible", "multizone"]
POLICIES: tuple[PolicyName, ...] = ("threshold", "window", "interruptible", "multizone")
EPS = 1e-9


class ScheduleError(CarbonpipeError, ValueError):
    """A scheduling request cannot be honoured; the message says why and what to change."""

    exit_code = 2


@dataclass(frozen=True, eq=False)
class Forecast:
    """Intensity forecast of one zone on a regular grid, plus where it came from."""

    zone: str
    starts: TimeArray  # datetime64[s], naive UTC, regular
    values: FloatArray  # gCO2e/kWh, mean over each slot
    step_s: int
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.starts.size == 0 or self.starts.size != self.values.size:
            raise ScheduleError("forecast needs >= 1 slot and as many values as starts")
        if self.step_s <= 0:
            raise ScheduleError("forecast step_s must be > 0")

    @property
    def t0(self) -> datetime:
        return from_datetime64(self.starts[0])

    def slot_time(self, offset_s: float) -> datetime:
        return self.t0 + timedelta(seconds=float(offset_s))

    def horizon_s(self) -> int:
        return int(self.starts.size) * self.step_s


@dataclass(frozen=True)
class AllowedHours:
    """Local wall-clock window (e.g. 03:00-22:00 Europe/London) in which the job may run.

    A slot is allowed only if it lies wholly inside the window; ``22:00-06:00`` wraps midnight.
    """

    start_min: int
    end_min: int
    tz: str = "UTC"

    @classmethod
    def parse(cls, spec: str, tz: str = "UTC") -> AllowedHours:
        try:
            a, b = spec.split("-")
            ha, ma = (int(x) for x in a.split(":"))
            hb, mb = (int(x) for x in b.split(":"))
        except ValueError:
            raise ScheduleError(f"allowed hours {spec!r}: expected HH:MM-HH:MM") from None
        ZoneInfo(tz)  # fail early on a bad tz name
        return cls(ha * 60 + ma, hb * 60 + mb, tz)

    @property
    def spec(self) -> str:
        """The ``HH:MM-HH:MM`` form ``parse`` reads (the time zone is ``tz``)."""
        return (f"{self.start_min // 60:02d}:{self.start_min % 60:02d}-"
                f"{self.end_min // 60:02d}:{self.end_min % 60:02d}")

    def mask(self, starts: TimeArray, step_s: int) -> BoolArray:
        secs = starts.astype("datetime64[s]").astype(np.int64)
        offsets = _utc_offsets_s(secs, self.tz)
        local_min = ((secs + offsets) % 86400) / 60.0
        dur = step_s / 60.0
        a, b = float(self.start_min), float(self.end_min)
        if a <= b:
            ok = (local_min >= a) & (local_min + dur <= b + EPS)
        else:
            ok = ((local_min >= a) & (local_min + dur <= b + 1440 + EPS)) | (
                local_min + dur <= b + EPS
            )
        return np.asarray(ok, dtype=np.bool_)


def _utc_offsets_s(secs: IntArray, tz: str) -> IntArray:
    """UTC offset of each instant; evaluated hourly and broadcast (DST moves on hours)."""
    zi = ZoneInfo(tz)
    hours = secs // 3600
    uniq, inv = np.unique(hours, return_inverse=True)
    offs = np.array(
        [
            int(datetime.fromtimestamp(int(h) * 3600, tz=timezone.utc).astimezone(zi)
                .utcoffset().total_seconds())  # type: ignore[union-attr]
            for h in uniq
        ],
        dtype=np.int64,
    )
    return offs[inv.reshape(secs.shape)]


@dataclass(frozen=True)
class Plan:
    """A scheduling decision: when to run, what it should emit, and against what baseline.

    ``g_per_kwh`` is the expected mean intensity over the job (= gCO2e per kWh the job uses);
    ``g_per_kw`` is gCO2e per kW of constant draw; ``expected_g`` needs ``power_w``.
    """

    policy: str
    zone: str
    segments: tuple[tuple[datetime, datetime], ...]
    duration_s: float
    deadline: datetime | None
    g_per_kwh: float
    now_g_per_kwh: float
    now_zone: str
    feasible: bool = True
    reason: str = ""
    power_w: float | None = None

    @property
    def start(self) -> datetime:
        return self.segments[0][0]

    @property
    def end(self) -> datetime:
        return self.segments[-1][1]

    @property
    def g_per_kw(self) -> float:
        return self.g_per_kwh * self.duration_s / 3600.0

    @property
    def now_g_per_kw(self) -> float:
        return self.now_g_per_kwh * self.duration_s / 3600.0

    @property
    def reduction_pct(self) -> float:
        if self.now_g_per_kwh <= 0:
            return 0.0
        return 100.0 * (1.0 - self.g_per_kwh / self.now_g_per_kwh)

    @property
    def expected_g(self) -> float | None:
        return None if self.power_w is None else self.g_per_kw * self.power_w / 1000.0

    @property
    def now_expected_g(self) -> float | None:
        return None if self.power_w is None else self.now_g_per_kw * self.power_w / 1000.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "zone": self.zone,
            "segments": [[utc_iso_s(a), utc_iso_s(b)] for a, b in self.segments],
            "start": utc_iso_s(self.start),
            "end": utc_iso_s(self.end),
            "duration_s": self.duration_s,
            "deadline": utc_iso_s(self.deadline) if self.deadline else None,
            "expected_g_per_kwh": self.g_per_kwh,
            "expected_g_per_kw": self.g_per_kw,
            "now_zone": self.now_zone,
            "now_g_per_kwh": self.now_g_per_kwh,
            "now_g_per_kw": self.now_g_per_kw,
            "reduction_pct": self.reduction_pct,
            "power_w": self.power_w,
            "expected_g": self.expected_g,
            "now_expected_g": self.now_expected_g,
            "feasible": self.feasible,
            "reason": self.reason,
        }


# ------------------------------------------------------------------------------ batch cores
@dataclass(frozen=True, eq=False)
class Batch:
    """Result of a core over m jobs: allocations X (m x W), feasibility and the reason."""

    alloc: FloatArray
    feasible: BoolArray
    reason: str = ""


def job_slots(duration_s: float, step_s: int) -> tuple[int, float]:
    """(full slots, fraction of one more slot) a job of ``duration_s`` needs."""
    if duration_s <= 0:
        raise ScheduleError("duration must be > 0")
    k = duration_s / step_s
    full = int(np.floor(k + EPS))
    frac = k - full
    return full, (0.0 if frac < EPS else float(frac))


def window_costs(values: FloatArray, duration_s: float, step_s: int) -> FloatArray:
    """Cost (sum of intensity x slot share) of a contiguous run starting at each slot.

    Shape (m, W - n_slots + 1); empty second axis when the job does not fit the forecast.
    """
    v = np.atleast_2d(values)
    full, frac = job_slots(duration_s, step_s)
    n_slots = full + (1 if frac else 0)
    n_start = v.shape[1] - n_slots + 1
    if n_start <= 0:
        return np.zeros((v.shape[0], 0))
    c = np.zeros((v.shape[0], v.shape[1] + 1))
    np.cumsum(v, axis=1, out=c[:, 1:])
    cost = c[:, full : full + n_start] - c[:, :n_start]
    if frac:
        cost = cost + frac * v[:, full : full + n_start]
    return np.asarray(cost, dtype=np.float64)


def _valid_starts(
    width: int, duration_s: float, deadline_s: float, step_s: int, allowed: BoolArray | None,
    n_rows: int,
) -> BoolArray:
    """Starts i (m x n_start) that finish by the deadline and cover only allowed slots."""
    full, frac = job_slots(duration_s, step_s)
    n_slots = full + (1 if frac else 0)
    n_start = max(width - n_slots + 1, 0)
    i = np.arange(n_start)
    ok = np.broadcast_to(i * step_s + duration_s <= deadline_s + EPS, (n_rows, n_start)).copy()
    if allowed is not None and n_start:
        bad = np.zeros((n_rows, width + 1), dtype=np.int64)
        np.cumsum(~np.atleast_2d(allowed), axis=1, out=bad[:, 1:])
        ok &= (bad[:, n_slots : n_slots + n_start] - bad[:, :n_start]) == 0
    return ok


def _alloc_from_starts(
    starts: IntArray, width: int, duration_s: float, step_s: int
) -> FloatArray:
    full, frac = job_slots(duration_s, step_s)
    pattern = np.r_[np.ones(full), [frac] if frac else []]
    x = np.zeros((starts.size, width))
    cols = starts[:, None] + np.arange(pattern.size)[None, :]
    rows = np.broadcast_to(np.arange(starts.size)[:, None], cols.shape)
    x[rows, cols] = pattern
    return x


def _now_ok(width: int, duration_s: float, step_s: int) -> None:
    full, frac = job_slots(duration_s, step_s)
    if full + (1 if frac else 0) > width:
        raise ScheduleError(
            f"forecast covers {width * step_s / 3600:.2f} h, shorter than the job "
            f"({duration_s / 3600:.2f} h): cannot even score starting now"
        )


def window_batch(
    values: FloatArray, duration_s: float, deadline_s: float, step_s: int,
    allowed: BoolArray | None = None,
) -> Batch:
    """Best contiguous start per row; rows with no valid start run now (feasible=False)."""
    v = np.atleast_2d(values)
    _now_ok(v.shape[1], duration_s, step_s)
    cost = window_costs(v, duration_s, step_s)
    ok = _valid_starts(v.shape[1], duration_s, deadline_s, step_s, allowed, v.shape[0])
    masked = np.where(ok, cost, np.inf)
    best = np.argmin(masked, axis=1).astype(np.int64)
    feasible = np.asarray(ok.any(axis=1), dtype=np.bool_)
    best[~feasible] = 0
    reason = "" if feasible.all() else _why_infeasible(duration_s, deadline_s, allowed)
    return Batch(_alloc_from_starts(best, v.shape[1], duration_s, step_s), feasible, reason)


def interruptible_batch(
    values: FloatArray, duration_s: float, deadline_s: float, step_s: int,
    allowed: BoolArray | None = None,
) -> Batch:
    """Greenest slots before the deadline (fractional knapsack: fill cheapest slots first).

    Optimal for the linear cost: all but one chosen slot are used in full, the partial slot is
    the cheapest left. Rows that cannot fit before the deadline run now, contiguously.
    """
    v = np.atleast_2d(values)
    m, w = v.shape
    _now_ok(w, duration_s, step_s)
    k = duration_s / step_s
    cap = np.clip((deadline_s - np.arange(w) * step_s) / step_s, 0.0, 1.0)
    cap = np.broadcast_to(cap, (m, w)).copy()
    if allowed is not None:
        cap = cap * np.atleast_2d(allowed)
    order = np.argsort(v, axis=1, kind="stable")
    cap_sorted = np.take_along_axis(cap, order, axis=1)
    before = np.cumsum(cap_sorted, axis=1) - cap_sorted
    x_sorted = np.clip(k - before, 0.0, cap_sorted)
    x = np.zeros_like(v)
    np.put_along_axis(x, order, x_sorted, axis=1)
    feasible = np.asarray(cap.sum(axis=1) >= k - 1e-7, dtype=np.bool_)
    reason = ""
    if not feasible.all():
        x[~feasible] = _alloc_from_starts(
            np.zeros(int((~feasible).sum()), dtype=np.int64), w, duration_s, step_s)
        reason = _why_infeasible(duration_s, deadline_s, allowed)
    return Batch(x, feasible, reason)


def threshold_batch(
    values: FloatArray, duration_s: float, step_s: int, threshold: float | FloatArray,
    max_delay_s: float, deadline_s: float | None = None, allowed: BoolArray | None = None,
) -> Batch:
    """Start now if the slot is below ``threshold``, else at the first slot below it within
    ``max_delay_s``; if none, at the latest start allowed (max delay / deadline). Heuristic:
    not optimal, and it can be worse than starting now."""
    v = np.atleast_2d(values)
    m, w = v.shape
    _now_ok(w, duration_s, step_s)
    dl = float("inf") if deadline_s is None else deadline_s
    ok = _valid_starts(w, duration_s, dl, step_s, allowed, m)
    n_start = ok.shape[1]
    ok &= (np.arange(n_start) * step_s <= max_delay_s + EPS)[None, :]
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64).reshape(-1, 1), (m, 1))
    below = ok & (v[:, :n_start] < thr)
    first = np.argmax(below, axis=1).astype(np.int64)
    has = below.any(axis=1)
    last_ok = (n_start - 1 - np.argmax(ok[:, ::-1], axis=1)).astype(np.int64)
    feasible = np.asarray(ok.any(axis=1), dtype=np.bool_)
    start = np.where(has, first, np.where(feasible, last_ok, 0))
    reason = "" if feasible.all() else _why_infeasible(duration_s, dl, allowed)
    if not reason and not has.all():
        reason = "no slot below the threshold within the max delay: starts at the latest allowed"
    return Batch(_alloc_from_starts(start, w, duration_s, step_s), feasible, reason)


def _why_infeasible(duration_s: float, deadline_s: float, allowed: BoolArray | None) -> str:
    if deadline_s + EPS < duration_s:
        return (f"deadline ({deadline_s / 3600:.2f} h) is shorter than the job "
                f"({duration_s / 3600:.2f} h): running now")
    if allowed is not None:
        return "no slot run fits the allowed hours before the deadline: running now"
    return "the forecast does not reach far enough to place the job: running now"


def cost_of(alloc: FloatArray, values: FloatArray) -> FloatArray:
    """Sum over slots of share x intensity (multiply by step_h for gCO2e per kW)."""
    return np.asarray((alloc * np.atleast_2d(values)).sum(axis=1), dtype=np.float64)


# ---------------------------------------------------------------------- single forecasts
def _mask(fc: Forecast, allowed: AllowedHours | BoolArray | None) -> BoolArray | None:
    if allowed is None:
        return None
    if isinstance(allowed, AllowedHours):
        return allowed.mask(fc.starts, fc.step_s)
    return np.asarray(allowed, dtype=np.bool_)


def _segments(fc: Forecast, x: FloatArray) -> tuple[tuple[datetime, datetime], ...]:
    """Merge used slot parts into (start, end) runs; a partial slot uses its first part."""
    segs: list[list[float]] = []
    for i in np.flatnonzero(x > EPS):
        a, b = float(i * fc.step_s), float(i * fc.step_s + x[i] * fc.step_s)
        if segs and abs(segs[-1][1] - a) < 1e-6:
            segs[-1][1] = b
        else:
            segs.append([a, b])
    return tuple((fc.slot_time(a), fc.slot_time(b)) for a, b in segs)


def _plan(
    policy: str, fc: Forecast, batch: Batch, duration_s: float, deadline_s: float | None,
    power_w: float | None, now: tuple[str, float] | None = None,
) -> Plan:
    x = batch.alloc[0]
    k = duration_s / fc.step_s
    g = float(cost_of(x[None, :], fc.values)[0] / k)
    if now is None:
        base = window_costs(fc.values, duration_s, fc.step_s)[0, 0] / k
        now = (fc.zone, float(base))
    return Plan(
        policy=policy, zone=fc.zone, segments=_segments(fc, x), duration_s=duration_s,
        deadline=None if deadline_s is None else fc.slot_time(deadline_s),
        g_per_kwh=g, now_zone=now[0], now_g_per_kwh=now[1],
        feasible=bool(batch.feasible[0]), reason=batch.reason, power_w=power_w,
    )


def _clip_deadline(fc: Forecast, deadline_s: float) -> tuple[float, str]:
    if deadline_s > fc.horizon_s():
        return float(fc.horizon_s()), (
            f"forecast ends {fc.horizon_s() / 3600:.1f} h ahead, before the deadline: "
            "planned within the forecast")
    return deadline_s, ""


def best_window(
    fc: Forecast, duration_s: float, deadline_s: float, *,
    allowed: AllowedHours | BoolArray | None = None, power_w: float | None = None,
) -> Plan:
    """Contiguous start minimising expected emissions, finishing by the deadline."""
    dl, note = _clip_deadline(fc, deadline_s)
    b = window_batch(fc.values, duration_s, dl, fc.step_s, _mask(fc, allowed))
    p = _plan("window", fc, b, duration_s, deadline_s, power_w)
    return _with_note(p, note)


def interruptible(
    fc: Forecast, duration_s: float, deadline_s: float, *,
    allowed: AllowedHours | BoolArray | None = None, power_w: float | None = None,
) -> Plan:
    """Greenest slots before the deadline; the job is paused and resumed between them."""
    dl, note = _clip_deadline(fc, deadline_s)
    b = interruptible_batch(fc.values, duration_s, dl, fc.step_s, _mask(fc, allowed))
    return _with_note(_plan("interruptible", fc, b, duration_s, deadline_s, power_w), note)


def threshold_defer(
    fc: Forecast, duration_s: float, threshold: float | None, max_delay_s: float, *,
    deadline_s: float | None = None, allowed: AllowedHours | BoolArray | None = None,
    power_w: float | None = None,
) -> Plan:
    """Run now if below ``threshold`` gCO2e/kWh, else wait (at most ``max_delay_s``) for the
    first slot below it, then run contiguously. ``threshold=None``: auto (see auto_threshold)."""
    horizon = deadline_s if deadline_s is not None else max_delay_s + duration_s
    dl, note = _clip_deadline(fc, horizon)
    thr = auto_threshold(fc.values, dl, fc.step_s) if threshold is None else threshold
    b = threshold_batch(fc.values, duration_s, fc.step_s, thr, max_delay_s,
                        None if deadline_s is None else dl, _mask(fc, allowed))
    p = _plan("threshold", fc, b, duration_s, deadline_s, power_w)
    return _with_note(p, note + (f" threshold={float(np.ravel(thr)[0]):.1f}" if threshold
                                 is None else ""))


def auto_threshold(values: FloatArray, horizon_s: float, step_s: int,
                   percentile: float = 30.0) -> FloatArray:
    """A threshold with no tuning: the 30th percentile of the forecast up to the horizon."""
    v = np.atleast_2d(values)
    n = max(1, min(v.shape[1], int(np.ceil(horizon_s / step_s - EPS))))
    return np.asarray(np.percentile(v[:, :n], percentile, axis=1), dtype=np.float64)


def multizone(
    forecasts: Mapping[str, Forecast], duration_s: float, deadline_s: float, *,
    home: str | None = None, inner: Literal["window", "interruptible"] = "window",
    allowed: AllowedHours | None = None, power_w: float | None = None,
) -> Plan:
    """Zone and start with the least expected emissions; baseline: start now in ``home``
    (default: the first zone). Forecasts may have different steps; all share "now"."""
    if not forecasts:
        raise ScheduleError("multizone needs at least one zone forecast")
    home = home or next(iter(forecasts))
    if home not in forecasts:
        raise ScheduleError(f"home zone {home!r} has no forecast")
    hf = forecasts[home]
    base = float(window_costs(hf.values, duration_s, hf.step_s)[0, 0] * hf.step_s / duration_s)
    fn = best_window if inner == "window" else interruptible
    plans = [fn(fc, duration_s, deadline_s, allowed=allowed, power_w=power_w)
             for fc in forecasts.values()]
    ranked = sorted(plans, key=lambda p: (not p.feasible, p.g_per_kwh))
    best = ranked[0] if ranked[0].feasible else plans[list(forecasts).index(home)]
    return Plan(
        policy="multizone", zone=best.zone, segments=best.segments, duration_s=duration_s,
        deadline=best.deadline, g_per_kwh=best.g_per_kwh, now_zone=home, now_g_per_kwh=base,
        feasible=best.feasible, reason=best.reason, power_w=power_w,
    )


def _with_note(p: Plan, note: str) -> Plan:
    if not note:
        return p
    from dataclasses import replace

    return replace(p, reason="; ".join(x for x in (p.reason, note.strip()) if x))
