"""Forecast adapters: trace replay, provider-chain points -> the policies' regular grid.

Policies only see :class:`~carbonpipe.scheduling.policies.Forecast`; this module is where
files and providers are turned into one, keeping the provenance (provider, kind, signal,
perfect foresight) so every decision log says what it was based on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from carbonpipe.core.timeutil import from_datetime64, utc_iso_s
from carbonpipe.intensity.model import IntensityPoint
from carbonpipe.scheduling.policies import Forecast, ScheduleError


def load_trace_forecast(path: str | Path, column: str | None = None) -> Forecast:
    """A whole trace file as one perfect-foresight 'forecast' (for evaluation)."""
    from carbonpipe.intensity.trace import load_trace

    tr = load_trace(path, column=column)
    return Forecast(
        zone=tr.zone, starts=tr.starts, values=np.asarray(tr.values_g_per_kwh, dtype=np.float64),
        step_s=int(tr.step_s),
        provenance={"provider": "trace", "kind": "actual", "signal": "average",
                    "source": tr.source, "perfect_foresight": True},
    )


def align_now(now: datetime, step_s: int) -> datetime:
    """Start of the slot holding ``now`` (the forecast's time 0)."""
    secs = int(now.timestamp())
    return datetime.fromtimestamp(secs - secs % step_s, tz=timezone.utc)


def replay_forecast(
    path: str | Path, now: datetime, horizon_s: float, *, trace_start: datetime | None = None,
    column: str | None = None,
) -> Forecast:
    """Forecast for ``now`` replayed from a past trace (perfect foresight of that past).

    ``trace_start`` is the trace instant that maps to ``now``; default: the same offset in the
    trace's year (``TraceSeries.replay_time``). Wraps to the trace start when it runs out.
    """
    from carbonpipe.intensity.trace import load_trace

    tr = load_trace(path, column=column)
    step = int(tr.step_s)
    t0 = align_now(now, step)
    mapped = trace_start or tr.replay_time(t0)
    i0 = tr.index_at(mapped)
    n = int(np.ceil(horizon_s / step)) + 1
    idx = (i0 + np.arange(n)) % len(tr)
    starts = np.datetime64(t0.replace(tzinfo=None), "s") + np.arange(n) * np.timedelta64(step, "s")
    return Forecast(
        zone=tr.zone, starts=starts, values=np.asarray(tr.values_g_per_kwh[idx], dtype=np.float64),
        step_s=step,
        provenance={"provider": "trace", "kind": "forecast", "signal": "average",
                    "source": tr.source, "perfect_foresight": True,
                    "replayed_from": utc_iso_s(from_datetime64(tr.starts[i0])),
                    "issued_at": utc_iso_s(now)},
    )


def shift_to(fc: Forecast, now: datetime) -> Forecast:
    """Re-grid so slot 0 starts exactly at ``now`` (time-weighted mean of the two slots each
    new slot straddles): "start now" then really means now, and costs stay exact integrals."""
    lead = (now - fc.t0).total_seconds()
    if lead <= 0 or fc.starts.size < 2:
        return fc
    k, rem = divmod(lead, fc.step_s)
    i0, f = int(k), rem / fc.step_s
    v = fc.values[i0:]
    if v.size < 2:
        raise ScheduleError("forecast ends before now")
    vals = (1.0 - f) * v[:-1] + f * v[1:] if f > 0 else v
    base = np.datetime64(int(now.timestamp()), "s")
    starts = base + np.arange(vals.size) * np.timedelta64(fc.step_s, "s")
    prov = {**fc.provenance, "shifted_to_now_s": lead}
    return Forecast(fc.zone, starts, np.asarray(vals, dtype=np.float64), fc.step_s, prov)


def forecast_from_points(points: Sequence[IntensityPoint], zone: str | None = None) -> Forecast:
    """Provider points (possibly uneven, mixed kinds) -> regular grid at their modal step.

    Gaps are held from the previous point. Provenance lists every provider/kind/signal seen;
    mixing average and marginal signals is refused, as the model promises.
    """
    pts = sorted((p for p in points if zone is None or p.zone == zone), key=lambda p: p.start)
    if not pts:
        raise ScheduleError(f"no forecast points for zone {zone!r}")
    signals = {p.signal for p in pts}
    if len(signals) > 1:
        raise ScheduleError(f"forecast mixes signals {sorted(signals)}; pick one provider")
    steps = [int((p.end - p.start).total_seconds()) for p in pts]
    step = max(set(steps), key=steps.count)
    t0 = pts[0].start
    n = max(1, int(np.ceil((pts[-1].end - t0).total_seconds() / step)))
    starts_s = np.array([int((p.start - t0).total_seconds()) for p in pts])
    grid = np.arange(n) * step
    idx = np.clip(np.searchsorted(starts_s, grid, side="right") - 1, 0, None)
    vals = np.array([p.carbon_intensity_g_per_kwh for p in pts], dtype=np.float64)[idx]
    base = np.datetime64(t0.astimezone(timezone.utc).replace(tzinfo=None), "s")
    return Forecast(
        zone=pts[0].zone, starts=base + grid.astype("timedelta64[s]"), values=vals, step_s=step,
        provenance={
            "provider": ",".join(sorted({p.provider for p in pts})),
            "kind": ",".join(sorted({p.kind for p in pts})),
            "signal": pts[0].signal,
            "source": ",".join(sorted({p.source.split(" @ ")[0] for p in pts if p.source})),
            "first_source": pts[0].source,
            "last_source": pts[-1].source,
            "perfect_foresight": all(p.perfect_foresight for p in pts),
            "n_points": len(pts),
            "replayed": any(bool(getattr(p, "replayed", False)) for p in pts),
        },
    )


def chain_for(settings: Any, clock: Callable[[], datetime] | None) -> Any:
    """The project's provider chain (settings.providers order), on our clock if given."""
    from carbonpipe.intensity.chain import build_chain

    return build_chain(settings, clock=clock) if clock is not None else build_chain(settings)


def provider_forecast(zone: str, horizon_s: float, settings: Any,
                      clock: Callable[[], datetime] | None = None) -> Forecast:
    """Forecast from the configured provider chain (falls back to the trace provider)."""
    chain = chain_for(settings, clock)
    points = chain.forecast(zone, timedelta(seconds=horizon_s))
    fc = forecast_from_points(list(points))
    fc.provenance["issued_at"] = utc_iso_s(clock() if clock else datetime.now(timezone.utc))
    fc.provenance["chain"] = type(chain).__name__
    return fc


def describe_provenance(prov: dict[str, Any]) -> str:
    """One line naming what a plan was made on, so a replay or an annual average is never
    mistaken for a forecast: ``uk forecast average - ...`` or ``trace forecast average
    [REPLAYED from 2020-..., perfect foresight] - gb-2020.csv``."""
    kind = str(prov.get("kind", "?"))
    flags = []
    if prov.get("replayed") or prov.get("replayed_from"):
        # chain points name their own instant: "<source> @ <past start>"
        past = prov.get("replayed_from") or str(prov.get("first_source", "")).partition(" @ ")[2]
        flags.append(f"REPLAYED from {past or 'a past period'}")
    if prov.get("perfect_foresight"):
        flags.append("perfect foresight")
    if "fallback" in kind:
        flags.append("annual average: says nothing about the hour")
    src = str(prov.get("source") or "")
    return (f"{prov.get('provider', '?')} {kind} {prov.get('signal', '?')}"
            + (f" [{', '.join(flags)}]" if flags else "") + (f" - {src}" if src else ""))
