"""Offline carbon-intensity traces: load the shared/bundled CSV and Parquet files onto a grid.

Everything downstream (trace provider, feeder replay, scheduler, benchmarks) wants one regular
time grid per zone, so the loader normalises the different published formats here, once:

* ``Time,Carbon Intensity`` (de/gb/fr-2020.csv, "Let's Wait Awhile"): naive timestamps,
  inferred UTC by the data README, interval *start* labels.
* Electricity Maps hourly exports (us-cal-ciso-*.csv): ``Datetime (UTC)`` plus a ``direct``
  and an ``LCA`` column. LCA is the default because the DE/GB/FR files use IPCC life-cycle
  factors, so only LCA values are comparable across traces.
* Generic CSV/Parquet: ``start`` or ``timestamp`` plus ``carbon_intensity_g_per_kwh``.

Resampling choice (GB has 30-min rows, then 15-min rows from 2020-10-31): the grid step is the
file's *dominant* (modal) spacing, and each cell gets the time-weighted mean of the series read
as piecewise constant (a row holds until the next row starts). So GB stays at 30 min and a
30-min cell built from two 15-min rows is their mean, which keeps energy-weighted averages
right. Missing rows (DE lacks 2020-12-19 23:15 and 23:45) are filled by holding the previous
value. This differs slightly from the paper, which just drops the :15/:45 rows.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import numpy.typing as npt

from carbonpipe.core.config import load_settings
from carbonpipe.core.errors import CarbonpipeError
from carbonpipe.core.resources import resource
from carbonpipe.core.timeutil import from_datetime64, parse_iso

TIME_COLUMNS = ("Time", "Datetime (UTC)", "start", "timestamp", "datetime")
GENERIC_VALUE_COLUMN = "carbon_intensity_g_per_kwh"
LWA_VALUE_COLUMN = "Carbon Intensity"
EM_LCA_COLUMN = "Carbon Intensity gCO₂eq/kWh (LCA)"
EM_DIRECT_COLUMN = "Carbon Intensity gCO₂eq/kWh (direct)"
COLUMN_ALIASES = {"lca": EM_LCA_COLUMN, "direct": EM_DIRECT_COLUMN}
VALUE_COLUMNS = (GENERIC_VALUE_COLUMN, LWA_VALUE_COLUMN, EM_LCA_COLUMN)

BUNDLED_TRACES_DIR = resource("data/traces")
MAX_FINE_CELLS = 20_000_000  # guard against pathological timestamp spacing

FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.datetime64]


class TraceError(CarbonpipeError, ValueError):
    """A trace file cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True, eq=False)
class TraceSeries:
    """One zone's intensity on a regular grid: cell i covers [starts[i], starts[i] + step_s)."""

    zone: str
    starts: TimeArray  # datetime64[s], UTC, strictly increasing, regular
    values_g_per_kwh: FloatArray
    step_s: int
    source: str

    def __len__(self) -> int:
        return int(self.starts.size)

    @property
    def step(self) -> timedelta:
        return timedelta(seconds=self.step_s)

    @property
    def first_start(self) -> datetime:
        return from_datetime64(self.starts[0])

    @property
    def end(self) -> datetime:
        """End of the last cell (exclusive)."""
        return from_datetime64(self.starts[-1]) + self.step

    @property
    def year(self) -> int:
        """Calendar year holding the median cell: the year a replay maps "now" into."""
        return from_datetime64(self.starts[len(self) // 2]).year

    def index_at(self, ts: datetime) -> int:
        """Index of the cell containing ``ts``; IndexError when outside the trace."""
        t = np.datetime64(_as_naive_utc(ts), "s")
        i = int(np.searchsorted(self.starts, t, side="right")) - 1
        if i < 0 or t >= self.starts[-1] + np.timedelta64(self.step_s, "s"):
            raise IndexError(f"{ts.isoformat()} outside trace {self.source}")
        return i

    def value_at(self, ts: datetime) -> float:
        return float(self.values_g_per_kwh[self.index_at(ts)])

    def window(self, start: datetime, end: datetime) -> tuple[TimeArray, FloatArray]:
        """Cells overlapping [start, end)."""
        s = np.datetime64(_as_naive_utc(start), "s") - np.timedelta64(self.step_s - 1, "s")
        e = np.datetime64(_as_naive_utc(end), "s")
        lo = int(np.searchsorted(self.starts, s, side="left"))
        hi = int(np.searchsorted(self.starts, e, side="left"))
        return self.starts[lo:hi], self.values_g_per_kwh[lo:hi]

    def replay_time(self, ts: datetime) -> datetime:
        """Map ``ts`` to the same offset within the trace's year (hour-of-year replay).

        Wraps modulo the trace span when the mapped instant falls outside it (e.g. hour
        8783 of a leap year against a 8760-hour trace). Weekdays are not aligned.
        """
        ts = ts.astimezone(timezone.utc)
        offset = ts - datetime(ts.year, 1, 1, tzinfo=timezone.utc)
        mapped = datetime(self.year, 1, 1, tzinfo=timezone.utc) + offset
        first, span = self.first_start, self.end - self.first_start
        if not first <= mapped < self.end:
            mapped = first + (mapped - first) % span
        return mapped


def _as_naive_utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        return ts  # trace convention: naive means UTC
    return ts.astimezone(timezone.utc).replace(tzinfo=None)


def _parse_time(value: object) -> datetime:
    if isinstance(value, datetime):
        return _as_naive_utc(value)
    return _as_naive_utc(parse_iso(str(value)))


def zone_from_path(path: Path) -> str:
    """de-2020.csv -> DE, us-cal-ciso-2023.csv -> US-CAL-CISO (drop the year and what follows)."""
    stem = re.sub(r"[-_]?(19|20)\d\d.*$", "", path.stem)
    if not stem:
        raise TraceError(f"{path}: cannot infer a zone from the file name; pass zone=")
    return stem.replace("_", "-").upper()


def _read_columns(path: Path) -> tuple[list[str], dict[str, list[object]]]:
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq  # optional dependency, only for Parquet traces

        table = pq.read_table(path)
        names = list(table.column_names)
        return names, {n: table.column(n).to_pylist() for n in names}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise TraceError(f"{path}: empty file") from None
        cols: dict[str, list[object]] = {h: [] for h in header}
        for row in reader:
            if not row:
                continue
            for h, v in zip(header, row, strict=False):
                cols[h].append(v)
    return header, cols


def _pick(
    header: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, path: Path
) -> str:
    if wanted is not None:
        name = COLUMN_ALIASES.get(wanted.lower(), wanted)
        if name not in header:
            raise TraceError(f"{path}: no {what} column {name!r}; columns are {header}")
        return name
    for c in candidates:
        if c in header:
            return c
    raise TraceError(f"{path}: no {what} column (looked for {list(candidates)}); got {header}")


def load_trace(
    path: str | os.PathLike[str], column: str | None = None, zone: str | None = None
) -> TraceSeries:
    """Read a trace file into a regular-grid :class:`TraceSeries` (see module doc).

    ``column`` picks the value column: ``"lca"`` (default for Electricity Maps exports),
    ``"direct"`` or an exact column name. ``zone`` overrides the zone from the file name.
    Results are cached per (file, size, mtime, column, zone); the arrays are read-only so a
    cached series can be shared safely.
    """
    p = Path(path).resolve()
    if not p.is_file():
        raise TraceError(f"{p}: no such trace file")
    st = p.stat()
    return _load_cached(str(p), st.st_size, st.st_mtime_ns, column, zone)


@functools.lru_cache(maxsize=16)
def _load_cached(
    path: str, _size: int, _mtime_ns: int, column: str | None, zone: str | None
) -> TraceSeries:
    p = Path(path)
    header, cols = _read_columns(p)
    tcol = _pick(header, None, TIME_COLUMNS, "time", p)
    vcol = _pick(header, column, VALUE_COLUMNS, "carbon-intensity", p)
    if zone is None and "zone" in cols and len(set(map(str, cols["zone"]))) == 1 and cols["zone"]:
        zone = str(cols["zone"][0])
    try:
        times = np.array([_parse_time(v) for v in cols[tcol]], dtype="datetime64[s]")
        values = np.array(
            [float(str(v)) if v not in ("", None) else np.nan for v in cols[vcol]], dtype=np.float64
        )
    except ValueError as exc:
        raise TraceError(f"{p}: unreadable value: {exc}") from None
    keep = ~np.isnan(values)
    times, values = times[keep], values[keep]
    if times.size < 2:
        raise TraceError(f"{p}: needs at least two rows with a value")
    starts, grid_values, step = regularize(times, values)
    starts.flags.writeable = False
    grid_values.flags.writeable = False
    return TraceSeries(
        zone=zone or zone_from_path(p),
        starts=starts,
        values_g_per_kwh=grid_values,
        step_s=step,
        source=f"{p.name}:{vcol}",
    )


def regularize(times: TimeArray, values: FloatArray) -> tuple[TimeArray, FloatArray, int]:
    """Resample an irregular series onto its modal step by time-weighted mean (module doc)."""
    order = np.argsort(times, kind="stable")
    t = times[order].astype("datetime64[s]").astype(np.int64)
    v = values[order]
    last = np.r_[t[1:] != t[:-1], True]  # duplicates: the later row wins
    t, v = t[last], v[last]
    diffs = np.diff(t)
    step = int(Counter(diffs.tolist()).most_common(1)[0][0])
    fine = int(np.gcd.reduce(np.r_[diffs, step]))
    origin = t[0] - t[0] % step
    n_cells = int(-(-(t[-1] + fine - origin) // step))  # ceil: last row covers one fine cell
    n_fine = n_cells * (step // fine)
    if n_fine > MAX_FINE_CELLS:
        raise TraceError(f"irregular timestamps need {n_fine} sub-cells; resample first")
    fine_starts = origin + np.arange(n_fine, dtype=np.int64) * fine
    idx = np.searchsorted(t, fine_starts, side="right") - 1
    fine_vals = v[np.clip(idx, 0, None)]  # before the first row: hold the first value
    grid = fine_vals.reshape(n_cells, step // fine).mean(axis=1)
    starts = (origin + np.arange(n_cells, dtype=np.int64) * step).astype("datetime64[s]")
    return starts, grid, step


def shared_traces_dir() -> Path | None:
    """``<shared_dir>/data/carbon-intensity`` (setting ``CARBONPIPE_SHARED_DIR``, default
    ``../shared`` next to the repo).

    The DE/GB/FR files carry no redistribution licence, so they are read from there and never
    copied into the repo. Returns None when the directory is absent.
    """
    root = load_settings().shared_dir  # not the cached object: read when asked
    for cand in (root / "data" / "carbon-intensity", root):
        if cand.is_dir() and any(cand.glob("*.csv")):
            return cand
    return None


def trace_files(extra: str = "") -> list[Path]:
    """Known trace files: ``extra`` (comma-separated, e.g. settings.trace_paths), the bundled
    ``data/traces`` and the shared directory, in that order of preference."""
    files = [Path(x.strip()) for x in extra.split(",") if x.strip()]
    dirs = [BUNDLED_TRACES_DIR, shared_traces_dir()]
    for d in dirs:
        if d is not None and d.is_dir():
            files += sorted(
                f
                for f in d.iterdir()
                if f.suffix in (".csv", ".parquet") and "production" not in f.name
            )
    return files


def find_trace(zone: str, extra: str = "") -> Path | None:
    """First trace file for ``zone`` (by file name), preferring explicit paths, then bundled."""
    for f in trace_files(extra):
        try:
            if zone_from_path(f) == zone.upper():
                return f
        except TraceError:
            continue
    return None
