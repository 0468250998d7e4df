"""``schedule advise``: the year's distribution equals a brute-force replay on the same trace,
and the paragraph says what the numbers are."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from carbonpipe.cli import main
from carbonpipe.scheduling.advise import advice_text, savings_distribution
from carbonpipe.scheduling.forecast import load_trace_forecast
from carbonpipe.scheduling.policies import Forecast


def _write_trace(path: Path, days: int = 400, seed: int = 5) -> Path:
    """A 30-min CSV trace in the Let's Wait Awhile format, diurnal plus noise."""
    rng = np.random.default_rng(seed)
    n = days * 48
    t = np.datetime64("2021-01-01T00:00") + np.arange(n) * np.timedelta64(30, "m")
    v = 250 + 90 * np.sin(2 * np.pi * np.arange(n) / 48) + 40 * rng.standard_normal(n)
    lines = ["Time,Carbon Intensity"] + [f"{str(a).replace('T', ' ')}:00,{b:.3f}"
                                         for a, b in zip(t, v, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def brute_force(fc: Forecast, duration_s: float, deadline_s: float,
                interruptible: bool) -> np.ndarray:
    """Per-job loop over every start (or the cheapest slots), last 365 days, hourly submits."""
    step = fc.step_s
    ds, width = int(duration_s // step), int(np.ceil(deadline_s / step))
    secs = fc.starts.astype("datetime64[s]").astype(np.int64)
    end = secs[-1] + step
    v = fc.values
    out = []
    for i in range(secs.size):
        if secs[i] % 3600 or secs[i] < end - 365 * 86400 or i + width > secs.size:
            continue
        h = v[i : i + width]
        now = h[:ds].mean()
        if interruptible:
            best = np.sort(h)[:ds].mean()
        else:
            best = min(h[k : k + ds].mean() for k in range(width - ds + 1))
        out.append(100 * (1 - best / now))
    return np.array(out)


def _check(fc: Forecast, duration_h: float, deadline_h: float, inter: bool) -> None:
    d = savings_distribution(fc, duration_h * 3600, deadline_h * 3600, interruptible=inter)
    r = brute_force(fc, duration_h * 3600, deadline_h * 3600, inter)
    assert d.n_jobs == r.size
    assert d.median_pct == pytest.approx(np.median(r), abs=1e-9)
    assert d.p10_pct == pytest.approx(np.percentile(r, 10), abs=1e-9)
    assert d.p90_pct == pytest.approx(np.percentile(r, 90), abs=1e-9)
    assert d.share_no_gain == pytest.approx(np.mean(r <= 1e-6))


@pytest.mark.parametrize("inter", [False, True])
def test_distribution_matches_brute_force_on_a_synthetic_trace(tmp_path: Path,
                                                               inter: bool) -> None:
    fc = load_trace_forecast(_write_trace(tmp_path / "xx-2021.csv"))
    _check(fc, 6, 24, inter)
    d = savings_distribution(fc, 6 * 3600, 24 * 3600, interruptible=inter)
    assert 365 * 24 - 24 <= d.n_jobs <= 365 * 24  # the last 12 months, whole windows only


@pytest.mark.shared
@pytest.mark.parametrize("inter", [False, True])
def test_distribution_matches_brute_force_on_the_gb_trace(inter: bool, traces_dir: Path) -> None:
    _check(load_trace_forecast(traces_dir / "gb-2020.csv"), 6, 24, inter)


def test_cli_paragraph_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = str(_write_trace(tmp_path / "xx-2021.csv"))
    argv = ["--duration", "6h", "--deadline", "24h", "--trace", trace]

    assert main(["schedule", "advise", *argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    d = out["distribution"]
    assert d["zone"] == "XX" and d["policy"] == "window"
    assert out["plan"] is not None and out["plan"]["policy"] == "window"
    assert main(["schedule", "advise", *argv]) == 0
    text = capsys.readouterr().out.strip()
    assert "\n" not in text  # one paragraph
    assert f"{d['median_pct']:.0f} %" in text and f"p10 {d['p10_pct']:.0f} %" in text
    assert f"p90 {d['p90_pct']:.0f} %" in text
    assert f"{100 * d['share_no_gain']:.0f} % of them gained nothing" in text
    bad = ["schedule", "advise", "--duration", "6h", "--deadline", "2h", "--trace", trace]
    assert main(bad) == 2
    assert "--deadline" in capsys.readouterr().err


def test_text_says_start_now_when_waiting_does_not_help(tmp_path: Path) -> None:
    from carbonpipe.scheduling.policies import best_window

    fc = load_trace_forecast(_write_trace(tmp_path / "xx-2021.csv"))
    d = savings_distribution(fc, 3600.0, 2 * 3600.0, interruptible=False)
    flat = Forecast("XX", fc.starts[:10], np.full(10, 100.0), fc.step_s)
    plan = best_window(flat, 3600.0, 4 * 3600.0)
    text = advice_text(d, plan, now=datetime(2021, 1, 1, tzinfo=timezone.utc))
    assert "start now" in text and "waiting would not help" in text


def test_dashboard_piece_shows_the_cli_paragraph(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from dashboard.advice import advice_markdown

    trace = str(_write_trace(tmp_path / "xx-2021.csv"))
    text = advice_markdown(None, 6.0, 24.0, True, trace)
    assert main(["schedule", "advise", "--duration", "6h", "--deadline", "24h", "--interruptible",
                        "--trace", trace]) == 0
    cli_text = capsys.readouterr().out.strip()
    assert text.split(" Today:")[0] == cli_text.split(" Today:")[0]  # same distribution
    assert advice_markdown(None, 6.0, 2.0, False, trace).startswith("Pick a duration")
    assert advice_markdown(None, 6.0, 24.0, False, str(tmp_path / "nope.csv")).startswith(
        "No advice:")
