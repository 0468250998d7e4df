"""A result without the stack: ``collect`` with no set-up and Kafka away, the summary, the
CodeCarbon-style CSV, ``track().result``, run-id re-use, flag ranges, the prediction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.cli import main
from carbonpipe.core.units import J_PER_KWH
from collector import progress
from collector.cli import model_from_command
from collector.output import CODECARBON_COLUMNS, codecarbon_row
from collector.predict import Predictor
from collector.publish import MemorySink
from collector.summary import Intensity, RunTotals, run_result
from collector.track import track
from tests.collector.fake_sysfs import FakePowercap

GB = Intensity("GB", 200.0, "static", "test table", fallback=False)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONPIPE_")}
    env.update(
        CARBONPIPE_HOME=str(tmp_path / "home"),
        CARBONPIPE_SYSFS_ROOT=str(tmp_path / "sys"),
        CARBONPIPE_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{_closed_port()}",
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2]), env.get("PYTHONPATH", "")]),
        **extra,
    )
    return env


def _collect(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "carbonpipe.cli", "collect", *args],
        env=env or _env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def test_collect_with_no_setup_and_kafka_away_ends_with_a_summary_and_a_csv(
    tmp_path: Path,
) -> None:
    pd = pytest.importorskip("pandas")
    pc = FakePowercap(tmp_path / "sys")
    pkg = pc.package(0)
    # the child is the load: it burns CPU and advances the package counter at 50 W
    child = (
        "import os, time\n"
        f"f = {str(pkg / 'energy_uj')!r}\n"
        "uj = 0\n"
        "t0 = time.monotonic()\n"
        "while time.monotonic() - t0 < 3.0:\n"
        "    s = time.monotonic()\n"
        "    while time.monotonic() - s < 0.1: pass\n"
        "    uj += 5_000_000\n"
        "    open(f + '.tmp', 'w').write(f'{uj}\\n'); os.replace(f + '.tmp', f)\n"
        "print('child output')\n"
    )
    t0 = time.monotonic()
    res = _collect(tmp_path, "--output", "e.csv", "--interval", "0.5", "--", sys.executable,
                   "-c", child)  # fmt: skip
    elapsed = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    assert res.stdout == "child output\n"  # nothing of ours on the child's stdout
    assert elapsed < 3.0 + 10.0, res.stderr  # was 60+ s with Kafka away
    err = res.stderr
    assert "Kafka unreachable" in err and "ConnectionRefused" in err
    assert "run id python-c-" in err  # generated, and said
    assert "WORLD" in err and "fallback" in err and "EMBER" in err  # the cited WORLD average
    assert "CPU" in err and "measured" in err and "gCO2e" in err
    assert "stayed in the spool" in err and "--flush-spool" in err
    df = pd.read_csv(tmp_path / "e.csv")
    assert list(df.columns) == list(CODECARBON_COLUMNS)
    row = df.iloc[0]
    assert row["energy_consumed"] > 0 and row["cpu_energy"] > 0
    assert row["emissions"] == pytest.approx(row["energy_consumed"] * 436 / 1000, rel=1e-6)
    assert row["region"] == "WORLD" and row["tracking_mode"] == "process"
    assert row["run_id"].startswith("python-c-") and row["experiment_id"]


def test_codecarbon_row_units() -> None:
    totals = RunTotals()
    for seq in range(2):
        totals.add({"run_id": "r", "user_id": "u", "model_name": "m", "host": "h",
                    "region": "GB", "timestamp": f"2025-01-01T00:00:0{seq}Z", "interval_s": 1.0,
                    "cpu_energy_j": 3600.0, "cpu_method": "measured", "ram_energy_j": 360.0,
                    "ram_method": "estimated", "ram_used_mb": 1024.0})  # fmt: skip
    r = run_result(totals, GB, left_in_spool=3)
    assert r.cpu_kwh == pytest.approx(7200 / J_PER_KWH) and r.cpu_power_w == 3600.0
    assert r.co2_g == pytest.approx(r.energy_kwh * 200.0)
    row = codecarbon_row(r, {"cloud_region": "aws:eu-west-1"})
    assert list(row) == list(CODECARBON_COLUMNS)
    assert row["emissions"] == pytest.approx(r.co2_g / 1000)  # kg
    assert row["emissions_rate"] == pytest.approx(r.co2_g / 1000 / 2.0)  # kg/s
    assert row["energy_consumed"] == pytest.approx(r.energy_kwh)  # kWh
    assert row["cloud_provider"] == "aws" and row["on_cloud"] == "Y"
    assert row["ram_used_gb"] == 1.0 and row["country_iso_code"] == ""


def test_track_result_after_the_block(tmp_path: Path, powercap: FakePowercap) -> None:
    powercap.package(0)
    sink = MemorySink()
    overrides = dict(home=tmp_path / "home", zone="GB", sysfs_root=tmp_path / "sys")
    with track(run_id="tr-1", user_id="u", model_name="m", interval_s=0.1, sink=sink,
               **overrides) as t:  # fmt: skip
        for _ in range(5):
            s = time.monotonic()
            while time.monotonic() - s < 0.1:
                pass
            powercap.advance("intel-rapl:0", 5.0)
    r = t.result
    assert r is not None and r.run_id == "tr-1" and r.zone == "GB"
    assert r.energy_kwh > 0 and r.cpu_method == "measured"
    assert r.intensity_source.startswith("zone_averages.csv") and not r.intensity_fallback
    assert r.co2_g == pytest.approx(r.energy_kwh * r.intensity_g_per_kwh)
    assert r.events == len(sink.events) and r.left_in_spool == 0
    assert r.energy_kwh == pytest.approx(
        sum(e["cpu_energy_j"] + e["ram_energy_j"] for e in sink.events) / J_PER_KWH
    )
    with pytest.raises(Exception, match="resume"):  # the same run id again
        track(run_id="tr-1", user_id="u", model_name="m", sink=MemorySink(),
              **overrides).__enter__()  # fmt: skip


def test_reused_run_id_needs_resume(tmp_path: Path) -> None:
    env = _env(tmp_path, CARBONPIPE_ZONE="GB")
    ev = tmp_path / "ev.jsonl"
    base = ("--run-id", "again", "--no-kafka", "--interval", "0.2", "--events", str(ev))
    first = _collect(tmp_path, *base, "--", "sleep", "0.5", env=env)
    assert first.returncode == 0, first.stderr
    n_first = len(ev.read_text().splitlines())
    second = _collect(tmp_path, *base, "--", "true", env=env)
    assert second.returncode == 2 and "--resume" in second.stderr
    assert "already collected" in second.stderr
    third = _collect(tmp_path, *base, "--resume", "--", "sleep", "0.3", env=env)
    assert third.returncode == 0, third.stderr
    seqs = [json.loads(line)["seq"] for line in ev.read_text().splitlines()]
    assert seqs[n_first] >= n_first  # the resumed run continues its seq


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--interval", "0"], "--interval"),
        (["--interval", "-1"], "--interval"),
        (["--interval", "5000"], "--interval"),
        (["--interval", "nan"], "--interval"),
        (["--epochs", "0"], "--epochs"),
        (["--predict-after", "0"], "--predict-after"),
        (["--stdout"], "--events FILE"),
        (["--events", "-"], "--events"),
        (["--output", "e.txt"], "--output"),
    ],
)
def test_flags_are_range_checked(
    args: list[str], flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("CARBONPIPE_HOME", str(tmp_path))
    assert main(["collect", *args, "--", "true"]) == 2
    err = capsys.readouterr().err
    assert flag in err, err


def test_pid_flag_is_range_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect", "--pid", "0"]) == 2
    assert "--pid 0" in capsys.readouterr().err


def test_model_from_command() -> None:
    assert model_from_command(["python", "train.py", "--lr", "1"]) == "train"
    assert model_from_command(["python3", "-u", "-m", "pkg.mod"]) == "pkg.mod"
    assert model_from_command(["/usr/bin/python3.11", "-c", "x"]) == "python-c"
    assert model_from_command(["./run.sh"]) == "run"
    assert model_from_command(["torchrun", "train.py"]) == "torchrun"


def _ev(j: float, epoch: int | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {"cpu_energy_j": j, "interval_s": 1.0}
    if epoch is not None:
        e["epoch"] = epoch
    return e


def test_predictor_counts_setup_once_and_epochs_at_the_measured_rate() -> None:
    p = Predictor(intensity_g_per_kwh=100.0, after_epochs=2)
    assert p.observe(_ev(3.6e5), 10) is None  # set-up, before any epoch
    for epoch, j in [(0, 3.6e6), (0, 3.6e6), (1, 3.6e6), (1, 3.6e6)]:
        assert p.observe(_ev(j, epoch), 10) is None
    made = p.observe(_ev(0.0, 2), 10)  # epoch 2 begins: 2 epochs of 2 kWh each
    assert made is not None
    assert made.predicted_kwh_per_epoch == pytest.approx(2.0)
    assert made.predicted_energy_kwh == pytest.approx(0.1 + 2.0 * 10)
    assert made.predicted_co2_g == pytest.approx(made.predicted_energy_kwh * 100.0)
    assert p.observe(_ev(1.0, 3), 10) is None  # made once


def test_predictor_waits_for_the_total_but_keeps_the_rate() -> None:
    p = Predictor(intensity_g_per_kwh=1.0)
    p.observe(_ev(3.6e6, 0), None)
    assert p.observe(_ev(0.0, 1), None) is None  # no total yet
    made = p.observe(_ev(9e9, 2), 4)  # later energy does not change the rate
    assert made is not None and made.predicted_energy_kwh == pytest.approx(4.0)


def test_prediction_after_one_epoch_is_within_10_percent(
    tmp_path: Path, powercap: FakePowercap, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Constant load: the fake package runs at 100 W and epochs take 0.6 s each. The job is
    charged the whole package (share 1): on a shared host the tree's share of busy CPU time
    swings with the neighbours' load, which is attribution's business, not the prediction's."""
    monkeypatch.setattr("collector.sampler.cpu_share", lambda tree_s, busy_s: 1.0)
    powercap.package(0)
    sink = MemorySink()
    said: list[str] = []
    stop = threading.Event()

    def load() -> None:  # the package counter at 100 W of wall time (no drift from jitter)
        t0, done_j = time.monotonic(), 0.0
        while not stop.is_set():
            target_j = 100.0 * (time.monotonic() - t0)
            powercap.advance("intel-rapl:0", target_j - done_j)
            done_j = target_j
            time.sleep(0.01)

    feeder = threading.Thread(target=load, daemon=True)
    feeder.start()
    epochs = 5
    try:
        with track(run_id="pred-1", user_id="u", model_name="m", interval_s=0.2, sink=sink,
                   total_epochs=epochs, home=tmp_path / "home", zone="GB",
                   sysfs_root=tmp_path / "sys") as t:  # fmt: skip
            assert t.collector is not None
            t.collector.report.say = said.append
            for _ in range(epochs):
                s = time.monotonic()
                while time.monotonic() - s < 0.6:
                    time.sleep(0.01)
                t.epoch_end()
    finally:
        stop.set()
        feeder.join()
        progress.reset()
    r = t.result
    assert r is not None and r.prediction is not None
    pred = r.prediction
    assert pred["predicted_epochs"] == epochs and pred["predicted_after_epochs"] == 1
    assert pred["predicted_energy_kwh"] == pytest.approx(r.energy_kwh, rel=0.10)
    assert said and "predicted" in said[0] and "kWh/epoch" in said[0]
    carried = [e for e in sink.events if "predicted_energy_kwh" in e]
    assert carried and carried[-1]["event_type"] == "end"  # published in later events
    assert carried[-1]["predicted_co2_g"] == pytest.approx(pred["predicted_co2_g"])
