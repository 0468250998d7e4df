"""MLflow: a real file-backed tracking store holds the run's kWh and gCO2e after ``track()``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import REPO_ROOT
from carbonpipe.core.units import J_PER_KWH
from tests.collector.exporters.helpers import RunFn, event_joules, expected_grams, gb_intensity

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A local file store (MLflow 3 keeps it behind MLFLOW_ALLOW_FILE_STORE); env only, so
    nothing global outlives the test."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file://{tmp_path}/mlruns")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    return mlflow.MlflowClient()


def history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def test_the_active_run_gets_energy_per_epoch_and_final_totals(
    store: Any, run_track: RunFn
) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 0.5)
        events = run_track(epochs=3, mlflow=True)
    rid = run.info.run_id
    joules = event_joules(events)

    energy = history(store, rid, "carbonpipe/energy_kwh")
    assert [step for step, _ in energy][:2] == [0, 1]  # epoch 0 and 1 ended, then the final
    assert energy[-1] == (2, pytest.approx(sum(joules.values()) / J_PER_KWH, rel=1e-9))
    assert [v for _, v in energy] == sorted(v for _, v in energy)  # cumulative
    for dev in ("cpu", "ram"):
        final = history(store, rid, f"carbonpipe/{dev}_energy_kwh")[-1][1]
        assert final == pytest.approx(joules[dev] / J_PER_KWH, rel=1e-9)
    assert history(store, rid, "carbonpipe/emissions_g")[-1][1] == pytest.approx(
        expected_grams(events), rel=1e-9
    )
    assert history(store, rid, "carbonpipe/intensity_g_per_kwh")[-1][1] == gb_intensity()
    tags = store.get_run(rid).data.tags
    assert tags["carbonpipe.cpu_method"] == "measured"
    assert tags["carbonpipe.intensity_provider"] == "static"
    assert history(store, rid, "loss") == [(0, 0.5)]  # the user's own metrics untouched


def test_no_active_run_logs_nothing_and_says_so_once(
    store: Any, run_track: RunFn, capsys: pytest.CaptureFixture[str]
) -> None:
    run_track(epochs=3, mlflow=True)
    err = capsys.readouterr().err
    assert err.count("no active MLflow run") == 1, err
    assert store.search_runs(["0"]) == []  # and it never started a run of its own


def test_collect_logs_to_the_run_the_command_resumes(store: Any, tmp_path: Path) -> None:
    """``collect --mlflow`` creates the run and hands it to CMD through MLFLOW_RUN_ID."""
    child = (
        "import mlflow, time\n"
        "with mlflow.start_run():\n"
        "    mlflow.log_metric('loss', 0.25)\n"
        "    time.sleep(1.5)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "CARBONPIPE_HOME": str(tmp_path / "h")}
    out = subprocess.run(
        [sys.executable, "-m", "collector", "collect", "--run-id", "cp-7", "--user", "ana",
         "--model", "m", "--zone", "GB", "--interval", "0.2", "--no-kafka", "--mlflow",
         "--", sys.executable, "-c", child],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    [run] = store.search_runs(["0"])
    assert run.info.run_name == "cp-7" and run.info.status == "FINISHED"
    assert run.data.metrics["loss"] == 0.25  # the command's metric ...
    assert run.data.metrics["carbonpipe/energy_kwh"] > 0  # ... beside the collector's
    assert f"MLflow run {run.info.run_id}" in out.stderr


def test_a_run_started_after_the_logger_is_bound_from_the_training_thread(store: Any) -> None:
    """MLflow's active run is per thread: the callbacks call bind_pending at each epoch."""
    from collector.exporters import bind_pending
    from collector.exporters.mlflow import MlflowLogger

    logger = MlflowLogger()
    assert logger.run_id is None
    with mlflow.start_run() as run:
        bind_pending()
        assert logger.run_id == run.info.run_id
