"""The "Let's Wait Awhile" experiments (Wiesner et al., Middleware '21), pure and vectorised.

Why this exists: the study is the best-known published evaluation of temporal shifting, so
reproducing its numbers with *our* policies tells us whether the scheduler is right, and its
harness (seeded forecast noise, fixed workloads) is a fair bench for new policies.

Definitions follow the artifact's ``simulate.py``/``strategy.py`` (see the README for the
differences we keep on purpose):

* time is in 30-min slots from 2020-01-01 00:00 (slot 0); the true series keeps only the
  :00/:30 rows; data after 2020-12-31 serve as look-ahead;
* a forecast is the true series plus i.i.d. Gaussian noise, sigma = error x mean of the whole
  loaded series, one noise vector per seed (``default_rng(seed)``); emissions always use the
  true series;
* decisions use the scheduler's own batch cores: ``window_batch`` (non-interrupting: the
  contiguous run with the least forecast cost, earliest on ties) and ``interruptible_batch``
  (the ``ds`` cheapest slots, earliest on ties), with the study's horizon as the allowed mask.

No I/O here: ``study_report`` loads traces, prints and plots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from carbonpipe.scheduling.policies import (
    BoolArray,
    FloatArray,
    IntArray,
    ScheduleError,
    TimeArray,
    interruptible_batch,
    window_batch,
)

SLOT_MIN = 30
SLOT_S = SLOT_MIN * 60
SLOTS_PER_DAY = 24 * 60 // SLOT_MIN
DAY_MIN = 24 * 60
STUDY_START = np.datetime64("2020-01-01T00:00", "s")
STUDY_YEAR_DAYS = 366  # 2020 is a leap year: the ML workload spans all its days
NIGHTLY_DAYS = 365  # the study schedules nightly jobs on days 0..364 and divides by 365
NIGHTLY_AT_MIN = 60  # 01:00
MAX_WINDOW_SLOTS = 16  # +-8 h
JAN1_WEEKDAY = 2  # 2020-01-01 was a Wednesday (Monday = 0)
WORKDAY_START_MIN = 9 * 60
WORKDAY_END_MIN = 17 * 60
N_ML_JOBS = 3387
ML_MIN_DURATION_MIN = 4 * 60
ML_MAX_DURATION_MIN = 90 * 60  # exclusive, as range() in the artifact
STUDY_ERRORS = (0.0, 0.05, 0.10)
STUDY_SEEDS = tuple(range(10))
SMOOTH_HALF_SLOTS = 2  # robust policy: +-1 h moving average of the forecast (5 slots)

Scenario = Literal["nightly", "next-workday", "semi-weekly"]
SCENARIOS: tuple[Scenario, ...] = ("nightly", "next-workday", "semi-weekly")
ML_SCENARIOS: tuple[Scenario, ...] = ("next-workday", "semi-weekly")
Policy = Literal["study", "smoothed"]
POLICIES: tuple[Policy, ...] = ("study", "smoothed")


# --------------------------------------------------------------------------------- series
def study_series(times: TimeArray, values_g_per_kwh: FloatArray) -> FloatArray:
    """The study's true series: rows from 2020-01-01 00:00 on, only :00 and :30 timestamps.

    Raises when a :00/:30 row is missing, because the study indexes slots by position and a
    gap would silently shift every later job.
    """
    t = np.asarray(times).astype("datetime64[s]")
    v = np.asarray(values_g_per_kwh, dtype=np.float64)
    secs = (t - STUDY_START).astype(np.int64)
    keep = (secs >= 0) & (secs % SLOT_S == 0)
    slots = secs[keep] // SLOT_S
    if slots.size == 0 or slots[0] != 0:
        raise ScheduleError("trace has no 2020-01-01 00:00 row: the study starts there")
    if np.any(np.diff(slots) != 1):
        gap = int(slots[np.flatnonzero(np.diff(slots) != 1)[0]] + 1)
        raise ScheduleError(f"trace misses the :00/:30 row of slot {gap} "
                            f"({STUDY_START + np.timedelta64(gap * SLOT_S, 's')})")
    return np.asarray(v[keep], dtype=np.float64)


def noisy_forecasts(true_g_per_kwh: FloatArray, error: float,
                    seeds: Sequence[int]) -> FloatArray:
    """One forecast row per seed (seeds x slots); a single exact row when error == 0.

    sigma = error x mean of the *whole* series (absolute, not relative, noise), as the
    artifact's ``_apply_error``; the same vector serves every job of that seed.
    """
    if error < 0:
        raise ScheduleError("forecast error must be >= 0")
    true = np.asarray(true_g_per_kwh, dtype=np.float64)
    if error == 0 or not seeds:
        return true[None, :].copy()
    sigma = error * float(true.mean())
    return np.stack([true + np.random.default_rng(s).normal(0.0, sigma, size=true.size)
                     for s in seeds])


def smooth_rows(values: FloatArray, allowed: BoolArray | None, half_slots: int) -> FloatArray:
    """Centred moving average over +-``half_slots`` of each row, using allowed slots only.

    Why: i.i.d. forecast noise makes the single lowest slot mostly a noise draw (the winner's
    curse); a true valley stays low after averaging with its neighbours, a noise dip does not.
    Edges average over the slots that exist (no wrap, no look past the horizon).
    """
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    if half_slots <= 0:
        return v
    m = np.ones_like(v) if allowed is None else np.atleast_2d(allowed).astype(np.float64)
    m = np.broadcast_to(m, v.shape)
    k = 2 * half_slots + 1
    pad = ((0, 0), (half_slots + 1, half_slots))
    cv = np.cumsum(np.pad(v * m, pad), axis=1)
    cm = np.cumsum(np.pad(m, pad), axis=1)
    w = v.shape[1]
    sums = cv[:, k : k + w] - cv[:, :w]
    counts = cm[:, k : k + w] - cm[:, :w]
    return np.asarray(np.where(counts > 0, sums / np.maximum(counts, 1e-12), v),
                      dtype=np.float64)


# ------------------------------------------------------------------------- ML workload
@dataclass(frozen=True, eq=False)
class MLJobs:
    """Scenario II workload: arrival and duration in minutes since 2020-01-01 00:00."""

    arrival_min: IntArray
    duration_min: IntArray

    def __len__(self) -> int:
        return int(self.arrival_min.size)

    @property
    def arrival_slot(self) -> IntArray:
        return np.asarray(self.arrival_min // SLOT_MIN, dtype=np.int64)

    @property
    def duration_slots(self) -> IntArray:
        return np.asarray(self.duration_min // SLOT_MIN, dtype=np.int64)

    @property
    def job_hours(self) -> float:
        return float(self.duration_min.sum() / 60.0)


def weekday_of_day(day: IntArray) -> IntArray:
    """Monday = 0 for day offsets from 2020-01-01."""
    return np.asarray((np.asarray(day) + JAN1_WEEKDAY) % 7, dtype=np.int64)


def generate_ml_jobs(n: int = N_ML_JOBS, seed: int = 0) -> MLJobs:
    """The artifact's ``generate_batch_jobs`` with the same random calls in the same order.

    Jobs per workday ~ multinomial(n, uniform); then, for *every* calendar day (weekends too,
    with size 0, so the stream of draws matches), sorted arrivals drawn from 09:00..16:30;
    then all durations at once, 4 h .. 89.5 h in 30-min steps, assigned in arrival order.
    """
    rng = np.random.default_rng(seed)
    days = np.arange(STUDY_YEAR_DAYS)
    work = np.flatnonzero(weekday_of_day(days) <= 4)
    per_work_day = rng.multinomial(n, [1 / len(work)] * len(work))
    counts = np.zeros(STUDY_YEAR_DAYS, dtype=np.int64)
    counts[work] = per_work_day
    start_choices = np.arange(WORKDAY_START_MIN, WORKDAY_END_MIN, SLOT_MIN)
    arrivals = [d * DAY_MIN + np.sort(rng.choice(start_choices, size=int(counts[d])))
                for d in days]
    durations = rng.choice(np.arange(ML_MIN_DURATION_MIN, ML_MAX_DURATION_MIN, SLOT_MIN),
                           size=n)
    return MLJobs(np.concatenate(arrivals).astype(np.int64), durations.astype(np.int64))


def deadline_min(oft_min: IntArray, scenario: Scenario) -> IntArray:
    """Latest finish (minutes since 2020-01-01) from the original finish time OFT.

    next-workday: Saturday -> Monday 09:00; Sunday or after 17:00 -> next day 09:00 (Friday
    17:30 -> Saturday 09:00, as in the artifact); before 09:00 -> 09:00 that day; else OFT.
    semi-weekly: Monday after 09:00 .. Thursday 09:00 -> the coming Thursday 09:00, else the
    coming Monday 09:00 (the same day when it is Monday/Thursday 09:00 or earlier).
    """
    oft = np.asarray(oft_min, dtype=np.int64)
    day, tod = oft // DAY_MIN, oft % DAY_MIN
    wd = weekday_of_day(day)
    nine = WORKDAY_START_MIN
    if scenario == "next-workday":
        return np.asarray(np.select(
            [wd == 5, (wd == 6) | (tod > WORKDAY_END_MIN), tod < nine],
            [(day + 2) * DAY_MIN + nine, (day + 1) * DAY_MIN + nine, day * DAY_MIN + nine],
            default=oft), dtype=np.int64)
    if scenario == "semi-weekly":
        to_thu = ((wd == 0) & (tod > nine)) | (wd == 1) | (wd == 2) | ((wd == 3) & (tod <= nine))
        ahead = np.where(to_thu, (10 - wd) % 7, (7 - wd) % 7)
        return np.asarray((day + ahead) * DAY_MIN + nine, dtype=np.int64)
    raise ScheduleError(f"no deadline rule for scenario {scenario!r}")


def flexibility_slots(jobs: MLJobs, scenario: Scenario) -> IntArray:
    """F: whole slots between the original finish and the deadline (never negative)."""
    oft = jobs.arrival_min + jobs.duration_min
    flex = (deadline_min(oft, scenario) - oft) // SLOT_MIN
    if np.any(flex < 0):
        raise ScheduleError("deadline rule produced a deadline before the original finish")
    return np.asarray(flex, dtype=np.int64)


# ---------------------------------------------------------------------------- scenario I
def nightly_slots(forecasts: FloatArray, window_slots: int,
                  smooth_half_slots: int = 0) -> tuple[IntArray, IntArray]:
    """Chosen slot per (seed, day) and the days that were scheduled.

    The candidates are the 2w+1 slots centred on 01:00; the pick is the scheduler's
    ``window_batch`` for a one-slot job (least forecast, earliest on ties). Days whose window
    would start before the trace are skipped, as the artifact does.
    """
    f = np.atleast_2d(forecasts)
    w = int(window_slots)
    if w < 0:
        raise ScheduleError("window must be >= 0 slots")
    centres = np.arange(NIGHTLY_DAYS) * SLOTS_PER_DAY + NIGHTLY_AT_MIN // SLOT_MIN
    days = np.flatnonzero(centres - w >= 0)
    width = 2 * w + 1
    first = centres[days] - w
    if first.size and first[-1] + width > f.shape[1]:
        raise ScheduleError("trace too short for the last nightly window")
    idx = first[:, None] + np.arange(width)[None, :]
    seen = f[:, idx].reshape(-1, width)
    seen = smooth_rows(seen, None, smooth_half_slots)
    b = window_batch(seen, float(SLOT_S), float(width * SLOT_S), SLOT_S)
    pick = np.argmax(b.alloc, axis=1).reshape(f.shape[0], days.size)
    return np.asarray(first[None, :] + pick, dtype=np.int64), days.astype(np.int64)


def nightly_g_per_kwh(true_g_per_kwh: FloatArray, forecasts: FloatArray, window_slots: int,
                      smooth_half_slots: int = 0) -> FloatArray:
    """The study's metric per seed: sum of true intensity of the chosen slots / 365."""
    slots, _ = nightly_slots(forecasts, window_slots, smooth_half_slots)
    return np.asarray(np.asarray(true_g_per_kwh)[slots].sum(axis=1) / NIGHTLY_DAYS,
                      dtype=np.float64)


# --------------------------------------------------------------------------- scenario II
@dataclass(frozen=True, eq=False)
class MLOutcome:
    """Emissions per seed (sum of true gCO2e/kWh x active 30-min slots, per unit power)
    and how often the study's '<= ds-th smallest' rule would have run extra tied slots."""

    emissions: FloatArray
    tied_extra_slots: int = 0


def ml_emissions(true_g_per_kwh: FloatArray, forecasts: FloatArray, jobs: MLJobs,
                 flex_slots: IntArray, *, interruptible: bool,
                 smooth_half_slots: int = 0) -> MLOutcome:
    """Place every job once at arrival on its forecast of ds + F + 1 slots; score on truth.

    Jobs are grouped by length (the batch cores take one duration) and stacked over seeds,
    so a scenario is ~170 numpy calls, not 3,387 x seeds simulations. The horizon of each
    row is the allowed mask; a contiguous run may therefore end one slot after the deadline
    (F + 2 candidate starts), exactly as the artifact's rolling-mean argmin does.
    """
    true = np.asarray(true_g_per_kwh, dtype=np.float64)
    f = np.atleast_2d(forecasts)
    n_seeds, n = f.shape
    a, ds = jobs.arrival_slot, jobs.duration_slots
    horizon = ds + np.asarray(flex_slots, dtype=np.int64) + 1
    if np.any(a + horizon > n):
        raise ScheduleError("trace too short: a job's horizon runs past its end")
    total = np.zeros(n_seeds)
    extra = 0
    core = interruptible_batch if interruptible else window_batch
    for d in np.unique(ds):
        sel = np.flatnonzero(ds == d)
        width = int(horizon[sel].max())
        idx = np.minimum(a[sel, None] + np.arange(width)[None, :], n - 1)
        allowed = np.tile(np.arange(width)[None, :] < horizon[sel, None], (n_seeds, 1))
        seen = f[:, idx].reshape(-1, width)
        if smooth_half_slots:
            seen = smooth_rows(seen, allowed, smooth_half_slots)
        b = core(seen, float(d * SLOT_S), float(width * SLOT_S), SLOT_S, allowed)
        alloc = b.alloc.reshape(n_seeds, sel.size, width)
        total += (alloc * true[idx][None, :, :]).sum(axis=(1, 2))
        if interruptible:
            masked = np.where(allowed, seen, np.inf)
            kth = np.sort(masked, axis=1)[:, int(d) - 1 : int(d)]
            extra += int(((masked <= kth) & allowed).sum() - d * masked.shape[0])
    return MLOutcome(total, extra)


# --------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class NightlyResult:
    """Scenario I for one zone, error and policy: metric and saving per window (slots)."""

    zone: str
    error: float
    policy: Policy
    seeds: tuple[int, ...]
    window_slots: tuple[int, ...]
    mean_g_per_kwh: tuple[float, ...]
    saving_pct: tuple[float, ...]
    jobs_skipped: tuple[int, ...]


@dataclass(frozen=True)
class MLResult:
    """Scenario II for one zone, scenario, error, interruptibility and policy."""

    zone: str
    scenario: Scenario
    interruptible: bool
    error: float
    policy: Policy
    seeds: tuple[int, ...]
    saving_pct: float
    saving_pct_per_seed: tuple[float, ...]
    emissions: float
    baseline_emissions: float
    tied_extra_slots: int


def _smooth(policy: Policy) -> int:
    return SMOOTH_HALF_SLOTS if policy == "smoothed" else 0


def run_nightly(zone: str, true_g_per_kwh: FloatArray, error: float, seeds: Sequence[int],
                windows_slots: Sequence[int] = tuple(range(MAX_WINDOW_SLOTS + 1)),
                policy: Policy = "study") -> NightlyResult:
    """Scenario I over the windows; saving relative to w = 0 (always 01:00, any error)."""
    fc = noisy_forecasts(true_g_per_kwh, error, seeds)
    base = float(nightly_g_per_kwh(true_g_per_kwh, fc[:1], 0)[0])
    means, skipped = [], []
    for w in windows_slots:
        means.append(float(nightly_g_per_kwh(true_g_per_kwh, fc, w, _smooth(policy)).mean()))
        skipped.append(NIGHTLY_DAYS - int(nightly_slots(fc[:1], w)[1].size))
    return NightlyResult(
        zone=zone, error=error, policy=policy, seeds=tuple(seeds) if error else (),
        window_slots=tuple(int(w) for w in windows_slots), mean_g_per_kwh=tuple(means),
        saving_pct=tuple(100.0 * (1.0 - m / base) for m in means), jobs_skipped=tuple(skipped))


def ml_baseline(true_g_per_kwh: FloatArray, jobs: MLJobs) -> float:
    """The study's baseline: non-interrupting, F = 0, perfect forecast."""
    out = ml_emissions(true_g_per_kwh, np.asarray(true_g_per_kwh)[None, :], jobs,
                       np.zeros(len(jobs), dtype=np.int64), interruptible=False)
    return float(out.emissions[0])


def run_ml(zone: str, true_g_per_kwh: FloatArray, scenario: Scenario, interruptible: bool,
           error: float, seeds: Sequence[int], policy: Policy = "study",
           jobs: MLJobs | None = None, baseline: float | None = None) -> MLResult:
    """Scenario II for one setting; saving = 1 - mean over seeds of E / E(baseline)."""
    if scenario not in ML_SCENARIOS:
        raise ScheduleError(f"{scenario!r} is not an ML scenario ({', '.join(ML_SCENARIOS)})")
    jobs = jobs if jobs is not None else generate_ml_jobs()
    base = baseline if baseline is not None else ml_baseline(true_g_per_kwh, jobs)
    fc = noisy_forecasts(true_g_per_kwh, error, seeds)
    out = ml_emissions(true_g_per_kwh, fc, jobs, flexibility_slots(jobs, scenario),
                       interruptible=interruptible, smooth_half_slots=_smooth(policy))
    per_seed = 100.0 * (1.0 - out.emissions / base)
    return MLResult(
        zone=zone, scenario=scenario, interruptible=interruptible, error=error, policy=policy,
        seeds=tuple(seeds) if error else (), saving_pct=float(per_seed.mean()),
        saving_pct_per_seed=tuple(float(x) for x in per_seed),
        emissions=float(out.emissions.mean()), baseline_emissions=base,
        tied_extra_slots=out.tied_extra_slots)
