"""``schedule evaluate`` on the real shared traces: structure and sanity of the numbers.

Skips (with the reason) when ../shared is absent; CARBONPIPE_SHARED_DIR overrides the path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from carbonpipe.scheduling import evaluate as ev
from carbonpipe.scheduling import report
from carbonpipe.scheduling.forecast import load_trace_forecast

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def all_rows(traces_dir: Path) -> list[dict]:
    return report.evaluate_all(traces_dir)


def test_every_trace_policy_length_deadline_is_reported(traces_dir: Path,
                                                        all_rows: list[dict]) -> None:
    files = report.shared_trace_files(traces_dir)
    assert {f.name for f in files} >= {"de-2020.csv", "gb-2020.csv", "fr-2020.csv"}
    assert not any("production" in f.name for f in files)
    for f in files:
        for pol in ("threshold", "window", "interruptible"):
            got = {(r["duration_h"], r["deadline_h"]) for r in all_rows
                   if r["trace"] == f.name and r["policy"] == pol}
            assert got == {(d, dl) for d in (1, 4, 12) for dl in (8, 24)}, (f.name, pol)
    multi = {r["trace"] for r in all_rows if r["policy"] == "multizone"}
    assert multi == {"de-2020.csv", "gb-2020.csv", "fr-2020.csv"}
    for r in all_rows:
        assert r["n_jobs"] > 8000  # one job per hour of about a year
        for key in ("mean_reduction_pct", "median_reduction_pct", "aggregate_reduction_pct"):
            assert np.isfinite(r[key])


def test_optimal_policies_never_lose_with_a_perfect_forecast(all_rows: list[dict]) -> None:
    for r in all_rows:
        if r["policy"] != "threshold":
            assert r["min_reduction_pct"] >= -1e-9, r
            assert r["share_worse_than_now"] == 0.0
        if r["duration_h"] > r["deadline_h"]:
            assert r["feasible_share"] == 0.0 and "shorter than the job" in r["reason"]
            assert abs(r["mean_reduction_pct"]) < 1e-9
        else:
            assert r["feasible_share"] == 1.0
    by = {(r["trace"], r["policy"], r["duration_h"], r["deadline_h"]): r for r in all_rows}
    for (trace, pol, d, dl), r in by.items():
        if pol == "interruptible":
            w = by[(trace, "window", d, dl)]
            assert r["mean_reduction_pct"] >= w["mean_reduction_pct"] - 1e-9
        if pol == "window" and dl == 24 and d <= 8:
            assert r["mean_reduction_pct"] >= by[(trace, "window", d, 8)]["mean_reduction_pct"]


def test_interruptible_beats_window_job_by_job(traces_dir: Path) -> None:
    fc = load_trace_forecast(traces_dir / "gb-2020.csv")
    w = ev.evaluate(fc, "window", 4 * 3600, 24 * 3600)
    i = ev.evaluate(fc, "interruptible", 4 * 3600, 24 * 3600)
    assert np.array_equal(w.submit_idx, i.submit_idx)
    assert np.all(i.plan_g <= w.plan_g + 1e-9)
    assert np.all(w.end_s <= 24 * 3600 + 1e-6) and np.all(i.end_s <= 24 * 3600 + 1e-6)


def test_forecast_error_is_seeded_and_scored_on_truth(traces_dir: Path) -> None:
    fc = load_trace_forecast(traces_dir / "fr-2020.csv")
    a = ev.evaluate(fc, "window", 4 * 3600, 24 * 3600, forecast_error=0.1, seed=3)
    b = ev.evaluate(fc, "window", 4 * 3600, 24 * 3600, forecast_error=0.1, seed=3)
    p = ev.evaluate(fc, "window", 4 * 3600, 24 * 3600)
    assert np.array_equal(a.plan_g, b.plan_g)
    assert np.array_equal(a.now_g, p.now_g)  # baseline always on the true trace
    assert a.reduction_pct.mean() < p.reduction_pct.mean()  # noise can only hurt on average


def test_cli_evaluate_json_plot_and_jobs_csv(traces_dir: Path, tmp_path: Path) -> None:
    png = tmp_path / "eval.png"
    out = subprocess.run(
        [sys.executable, "-m", "carbonpipe.cli", "schedule", "evaluate", "--trace",
         str(traces_dir / "gb-2020.csv"), "--policy", "window,interruptible", "--duration", "4h",
         "--deadline", "24h", "--json", "--plot", str(png), "--forecast-error", "0.05"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [s["policy"] for s in data["summaries"]] == ["window", "interruptible"]
    assert png.stat().st_size > 10_000
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("submit_time,duration,deadline,interruptible\n"
                    "2020-03-01T10:00:00Z,4h,24h,true\n"
                    "2020-03-01T10:00:00Z,4h,24h,false\n"
                    "2020-07-01T08:15:00Z,90m,2020-07-02T08:00:00Z,true\n")
    out = subprocess.run(
        [sys.executable, "-m", "carbonpipe.cli", "schedule", "evaluate", "--trace",
         str(traces_dir / "gb-2020.csv"), "--policy", "interruptible", "--jobs", str(jobs),
         "--json"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["jobs"]["interruptible"]
    assert [r["policy"] for r in rows] == ["interruptible", "window", "interruptible"]
    assert all(r["reduction_pct"] >= -1e-9 for r in rows)
    assert rows[0]["plan_g_per_kwh"] <= rows[1]["plan_g_per_kwh"] + 1e-9


def test_multizone_cli_and_alignment(traces_dir: Path) -> None:
    fcs = [load_trace_forecast(traces_dir / n) for n in ("de-2020.csv", "gb-2020.csv")]
    al = ev.align(fcs)
    assert {f.step_s for f in al} == {1800} and al[0].starts.size == al[1].starts.size
    res = ev.evaluate(al[0], "multizone", 4 * 3600, 24 * 3600, others={f.zone: f for f in al})
    alone = ev.evaluate(al[0], "window", 4 * 3600, 24 * 3600)
    assert np.all(res.plan_g <= alone.plan_g + 1e-9)
    assert set(res.zones) == {"DE", "GB"}


def test_provider_chain_forecast_keeps_provenance(traces_dir: Path, tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from carbonpipe.core.config import load_settings
    from carbonpipe.scheduling.forecast import provider_forecast
    from carbonpipe.scheduling.policies import best_window

    settings = load_settings(providers="trace,static", home=tmp_path,
                             trace_paths=str(traces_dir / "gb-2020.csv"))
    now = datetime(2020, 6, 1, 10, 0, tzinfo=timezone.utc)
    fc = provider_forecast("GB", 24 * 3600, settings, clock=lambda: now)
    assert fc.zone == "GB" and fc.step_s == 1800 and fc.t0 == now
    assert fc.provenance["provider"] == "trace" and fc.provenance["perfect_foresight"] is True
    truth = load_trace_forecast(traces_dir / "gb-2020.csv")
    i = int(np.searchsorted(truth.starts, np.datetime64("2020-06-01T10:00:00")))
    assert np.allclose(fc.values[:48], truth.values[i:i + 48])
    assert best_window(fc, 4 * 3600, 24 * 3600).reduction_pct >= 0
