"""Offline trace provider: real historical traces stand in for a live API (demo, tests, CI).

Honesty rules: a value from another time is flagged ``replayed=True`` and its source names the
trace instant; a "forecast" read from the trace is flagged ``perfect_foresight=True`` because
it is the future as it actually happened, which no real forecast can match.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from carbonpipe.core.timeutil import floor_time, utc_iso_min
from carbonpipe.intensity.base import Clock, require_aware, utcnow
from carbonpipe.intensity.errors import NotCovered
from carbonpipe.intensity.model import IntensityPoint, Kind
from carbonpipe.intensity.trace import TraceSeries, find_trace, load_trace

NAME = "trace"
MAX_CELLS = 200_000  # refuse absurd ranges (about 5.7 years of 15-min cells)


class TraceProvider:
    """Serve history/forecast/current from :class:`TraceSeries` (loaded lazily per zone)."""

    name = NAME

    def __init__(
        self,
        series: Mapping[str, TraceSeries] | None = None,
        trace_paths: str = "",
        clock: Clock = utcnow,
    ) -> None:
        self._series: dict[str, TraceSeries] = {k.upper(): v for k, v in (series or {}).items()}
        self.trace_paths = trace_paths
        self.clock = clock

    def series(self, zone: str) -> TraceSeries:
        z = zone.upper()
        if z not in self._series:
            path = find_trace(z, self.trace_paths)
            if path is None:
                raise NotCovered(
                    NAME,
                    f"no trace file for zone {zone} (bundled data/traces, "
                    "../shared/data/carbon-intensity, CARBONPIPE_TRACE_PATHS)",
                )
            self._series[z] = load_trace(path, zone=z)
        return self._series[z]

    def points(
        self, zone: str, start: datetime, end: datetime, kind: Kind, perfect_foresight: bool = False
    ) -> list[IntensityPoint]:
        """Cells overlapping [start, end): the trace's own value inside its span, else replay."""
        s = self.series(zone)
        start, end = require_aware(start, "start"), require_aware(end, "end")
        t = floor_time(start, s.step)
        if (end - t) / s.step > MAX_CELLS:
            raise ValueError(f"range {start}..{end} is more than {MAX_CELLS} trace cells")
        out = []
        while t < end:
            inside = s.first_start <= t < s.end
            src_t = t if inside else s.replay_time(t)
            note = "" if inside else f" @ {utc_iso_min(src_t)} (hour-of-year replay)"
            out.append(
                IntensityPoint(
                    zone=zone.upper(),
                    start=t,
                    end=t + s.step,
                    carbon_intensity_g_per_kwh=s.value_at(src_t),
                    provider=NAME,
                    kind=kind,
                    signal="average",
                    source=f"trace {s.source}{note}",
                    perfect_foresight=perfect_foresight,
                    replayed=not inside,
                )
            )
            t += s.step
        return out

    def current(self, zone: str) -> IntensityPoint:
        now = self.clock()
        return self.points(zone, now, now + timedelta(microseconds=1), "actual")[0]

    def history(self, zone: str, start: datetime, end: datetime) -> list[IntensityPoint]:
        return self.points(zone, start, end, "actual")

    def forecast(self, zone: str, horizon: timedelta) -> list[IntensityPoint]:
        now = self.clock()
        return self.points(zone, now, now + horizon, "forecast", perfect_foresight=True)
