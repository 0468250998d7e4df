"""The "Let's Wait Awhile" harness: generator pinned, deadline rules on hand-made cases, and
the vectorised scenarios against per-job brute force on synthetic series (no ../shared)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from carbonpipe.cli import main
from carbonpipe.scheduling.policies import ScheduleError
from carbonpipe.scheduling.study import (
    SLOT_MIN,
    MLJobs,
    deadline_min,
    flexibility_slots,
    generate_ml_jobs,
    ml_emissions,
    nightly_g_per_kwh,
    noisy_forecasts,
    smooth_rows,
    study_series,
)

T0 = datetime(2020, 1, 1)


def m(ts: str) -> int:
    """Minutes since 2020-01-01 00:00 of an ISO time."""
    return int((datetime.fromisoformat(ts) - T0).total_seconds() // 60)


# ------------------------------------------------------------------------------ generator
def test_workload_generator_is_the_artifacts() -> None:
    jobs = generate_ml_jobs()
    assert len(jobs) == 3387
    first = list(zip(jobs.arrival_min[:3].tolist(), jobs.duration_min[:3].tolist(),
                     strict=True))
    assert first == [(570, 3180), (630, 3030), (690, 2070)]
    assert jobs.job_hours == 155_626
    day, tod = jobs.arrival_min // 1440, jobs.arrival_min % 1440
    assert set(((day + 2) % 7).tolist()) <= {0, 1, 2, 3, 4}  # workdays only
    assert tod.min() >= 9 * 60 and tod.max() <= 16 * 60 + 30 and np.all(tod % 30 == 0)
    assert np.all(np.diff(jobs.arrival_min) >= 0)  # sorted within and across days
    assert jobs.duration_min.min() >= 240 and jobs.duration_min.max() <= 5370
    assert len(np.unique(day)) <= 262


# --------------------------------------------------------------------------- deadline rules
@pytest.mark.parametrize(("oft", "deadline"), [
    ("2020-01-04T10:00", "2020-01-06T09:00"),  # Saturday -> Monday 09:00
    ("2020-01-04T03:00", "2020-01-06T09:00"),  # Saturday early -> Monday too
    ("2020-01-05T20:00", "2020-01-06T09:00"),  # Sunday -> next day 09:00
    ("2020-01-03T17:30", "2020-01-04T09:00"),  # Friday 17:30 -> Saturday 09:00 (artifact)
    ("2020-01-03T17:00", "2020-01-03T17:00"),  # 17:00 is still the workday: no flexibility
    ("2020-01-07T23:30", "2020-01-08T09:00"),  # Tuesday night -> Wednesday 09:00
    ("2020-01-07T08:30", "2020-01-07T09:00"),  # before 09:00 -> same day 09:00
    ("2020-01-08T12:00", "2020-01-08T12:00"),  # workday daytime: none
    ("2020-01-08T09:00", "2020-01-08T09:00"),
])
def test_next_workday_rule(oft: str, deadline: str) -> None:
    assert deadline_min(np.array([m(oft)]), "next-workday")[0] == m(deadline)


@pytest.mark.parametrize(("oft", "deadline"), [
    ("2020-01-06T09:00", "2020-01-06T09:00"),  # Monday 09:00 exactly -> that Monday
    ("2020-01-06T09:30", "2020-01-09T09:00"),  # Monday after 09:00 -> Thursday
    ("2020-01-07T02:00", "2020-01-09T09:00"),  # Tuesday
    ("2020-01-08T23:30", "2020-01-09T09:00"),  # Wednesday night
    ("2020-01-09T09:00", "2020-01-09T09:00"),  # Thursday 09:00 exactly -> that Thursday
    ("2020-01-09T09:30", "2020-01-13T09:00"),  # Thursday after 09:00 -> Monday
    ("2020-01-10T17:30", "2020-01-13T09:00"),  # Friday
    ("2020-01-11T12:00", "2020-01-13T09:00"),  # Saturday
    ("2020-01-12T23:30", "2020-01-13T09:00"),  # Sunday
    ("2020-01-13T08:00", "2020-01-13T09:00"),  # Monday early -> same Monday
])
def test_semi_weekly_rule(oft: str, deadline: str) -> None:
    assert deadline_min(np.array([m(oft)]), "semi-weekly")[0] == m(deadline)


def test_flexibility_is_deadline_minus_original_finish_in_slots() -> None:
    jobs = generate_ml_jobs()
    for sc in ("next-workday", "semi-weekly"):
        f = flexibility_slots(jobs, sc)
        oft = jobs.arrival_min + jobs.duration_min
        for j in (0, 1, 500, 3386):
            end = T0 + timedelta(minutes=int(oft[j]))
            dl = T0 + timedelta(minutes=int(deadline_min(oft[j : j + 1], sc)[0]))
            assert f[j] == (dl - end).total_seconds() // (SLOT_MIN * 60)
        assert f.min() >= 0


# ------------------------------------------------------------------------------- series
def test_study_series_keeps_only_full_and_half_hours_from_2020() -> None:
    t = np.datetime64("2019-12-31T23:00") + np.arange(12) * np.timedelta64(15, "m")
    v = np.arange(12, dtype=float)
    s = study_series(t, v)
    assert s.tolist() == [4.0, 6.0, 8.0, 10.0]  # 00:00, 00:30, 01:00, 01:30
    with pytest.raises(ScheduleError, match="misses"):
        study_series(np.delete(t, 6), np.delete(v, 6))


def test_noisy_forecasts_are_seeded_absolute_noise() -> None:
    true = np.linspace(100, 300, 5000)
    assert np.array_equal(noisy_forecasts(true, 0.0, range(10)), true[None, :])
    f = noisy_forecasts(true, 0.1, [0, 1, 0])
    assert f.shape == (3, 5000) and np.array_equal(f[0], f[2]) and not np.allclose(f[0], f[1])
    resid = f[1] - true
    assert abs(resid.std() / (0.1 * true.mean()) - 1) < 0.05  # sigma from the series mean
    assert abs(resid[:2500].std() - resid[2500:].std()) < 0.1 * resid.std()  # not relative


def test_smooth_rows_matches_a_loop() -> None:
    rng = np.random.default_rng(3)
    v = rng.random((4, 11))
    allowed = np.arange(11)[None, :] < np.array([[11], [7], [3], [1]])
    got = smooth_rows(v, allowed, 2)
    for r in range(4):
        for i in range(11):
            nb = [v[r, k] for k in range(max(0, i - 2), min(11, i + 3)) if allowed[r, k]]
            assert got[r, i] == pytest.approx(np.mean(nb) if nb else v[r, i])


# ---------------------------------------------------------------------- brute-force oracles
def _series(n: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 200 + 80 * np.sin(2 * np.pi * t / 48) + 30 * rng.standard_normal(n)


@pytest.mark.parametrize("w", [0, 2, 5, 16])
def test_nightly_matches_brute_force(w: int) -> None:
    true = _series(365 * 48 + 40)
    fc = noisy_forecasts(true, 0.1, [0, 1])
    got = nightly_g_per_kwh(true, fc, w)
    for s in range(2):
        total = 0.0
        for d in range(365):
            c = d * 48 + 2
            if c - w < 0:
                continue  # skipped, divisor stays 365
            cands = list(range(c - w, c + w + 1))
            best = min(cands, key=lambda i: (fc[s, i], i))
            total += true[best]
        assert got[s] == pytest.approx(total / 365, rel=1e-12)


@pytest.mark.parametrize("interruptible", [False, True])
def test_ml_emissions_match_brute_force(interruptible: bool) -> None:
    rng = np.random.default_rng(11)
    n_jobs = 40
    arrival = np.sort(rng.integers(0, 2000, n_jobs)) * SLOT_MIN
    duration = rng.integers(8, 60, n_jobs) * SLOT_MIN
    flex = rng.integers(0, 50, n_jobs)
    jobs = MLJobs(arrival.astype(np.int64), duration.astype(np.int64))
    true = _series(2200)
    fc = noisy_forecasts(true, 0.05, [0, 1, 2])
    got = ml_emissions(true, fc, jobs, flex, interruptible=interruptible)
    for s in range(3):
        total = 0.0
        for j in range(n_jobs):
            a, ds, f = arrival[j] // SLOT_MIN, duration[j] // SLOT_MIN, flex[j]
            h = fc[s, a : a + ds + f + 1]
            if interruptible:  # the study's rule: every slot <= the ds-th smallest
                kth = np.sort(h)[ds - 1]
                used = [a + i for i in range(h.size) if h[i] <= kth]
            else:  # rolling mean over ds, argmin (first on ties)
                means = [h[i : i + ds].mean() for i in range(h.size - ds + 1)]
                start = int(np.argmin(means))
                used = list(range(a + start, a + start + ds))
            total += true[used].sum()
        assert got.emissions[s] == pytest.approx(total, rel=1e-12)
    assert got.tied_extra_slots == 0


# ----------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize(("args", "flag"), [
    (["--forecast-error", "1.5"], "--forecast-error"),
    (["--forecast-error", "-0.1"], "--forecast-error"),
    (["--window-h", "8.5"], "--window-h"),
    (["--window-h", "1.2"], "--window-h"),
    (["--seeds", "5-2"], "--seeds"),
    (["--seeds", "a"], "--seeds"),
    (["--scenario", "weekly"], "--scenario"),
    (["--interruptible"], "--interruptible"),
])
def test_cli_range_checks_name_the_flag(args: list[str], flag: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["schedule", "evaluate", "--study", "lets-wait-awhile", "--trace", "unused.csv",
               *args])
    assert rc == 2
    assert flag in capsys.readouterr().err


@pytest.mark.shared
def test_loaded_series_are_the_papers(traces_dir: Path) -> None:
    """The authors' analysis.ipynb describe() (quoted in the data README): 2020 means."""
    from carbonpipe.scheduling.study_report import load_study_trace

    for name, mean in (("de-2020.csv", 313.40), ("gb-2020.csv", 212.94),
                       ("fr-2020.csv", 56.34)):
        _, s = load_study_trace(str(traces_dir / name))
        assert s[: 366 * 48 + 1].mean() == pytest.approx(mean, abs=0.006)


@pytest.mark.shared
def test_cli_nightly_json_matches_the_service(traces_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import json

    trace = str(traces_dir / "gb-2020.csv")
    rc = main(["schedule", "evaluate", "--study", "lets-wait-awhile", "--scenario", "nightly",
               "--trace", trace, "--forecast-error", "0.05", "--seeds", "0-2", "--window-h", "8",
               "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    from carbonpipe.scheduling.study_report import load_study_trace

    _, true = load_study_trace(str(Path(trace).resolve()))
    fc = noisy_forecasts(true, 0.05, [0, 1, 2])
    expect = nightly_g_per_kwh(true, fc, 16).mean()
    study = next(r for r in out["nightly"] if r["policy"] == "study")
    assert study["window_slots"] == [16]
    assert study["mean_g_per_kwh"][0] == pytest.approx(expect)
    base = nightly_g_per_kwh(true, true[None, :], 0)[0]
    assert study["saving_pct"][0] == pytest.approx(100 * (1 - expect / base))
