"""W&B: an offline run's own log file holds the run's kWh and gCO2e after ``track()``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.units import J_PER_KWH
from collector.track import track
from tests.collector.exporters.helpers import RunFn, event_joules, expected_grams, wandb_records

wandb = pytest.importorskip("wandb")


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Offline mode (no network, no account), files under tmp_path."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    yield tmp_path
    if wandb.run is not None:
        wandb.run.finish()


def test_the_active_run_gets_energy_per_epoch_and_final_totals(
    offline: Path, run_track: RunFn
) -> None:
    run = wandb.init(project="carbonpipe-test", dir=offline)
    user_steps = iter(range(100, 10_000, 10))

    def user_logs(t: track) -> None:  # a training script logging with explicit steps
        run.log({"loss": 0.5}, step=next(user_steps))

    events = run_track(epochs=3, wandb=True, each=user_logs)
    run.finish()
    wandb.teardown()  # the service writes the log file asynchronously: wait until it is done

    records = wandb_records(offline)
    rows = [r for kind, r in records if kind == "history"]
    ours = [r for r in rows if "carbonpipe/energy_kwh" in r]
    assert [r["carbonpipe/step"] for r in ours] == [0, 1, 2]  # epoch 0, 1 ended; then final
    kwh = sum(event_joules(events).values()) / J_PER_KWH
    assert ours[-1]["carbonpipe/energy_kwh"] == pytest.approx(kwh, rel=1e-9)
    assert ours[-1]["carbonpipe/emissions_g"] == pytest.approx(expected_grams(events), rel=1e-9)
    assert ours[0]["carbonpipe/energy_kwh"] < ours[-1]["carbonpipe/energy_kwh"]
    assert sum("loss" in r for r in rows) == 9  # W&B dropped none of the user's rows
    summary: dict[str, Any] = {}
    for kind, r in records:
        if kind == "summary":
            summary.update(r)
    assert summary["carbonpipe/ram_energy_kwh"] == pytest.approx(
        event_joules(events)["ram"] / J_PER_KWH, rel=1e-9
    )


def test_no_active_run_logs_nothing_and_says_so_once(
    offline: Path, run_track: RunFn, capsys: pytest.CaptureFixture[str]
) -> None:
    run_track(epochs=2, wandb=True)
    err = capsys.readouterr().err
    assert err.count("no active W&B run") == 1, err
    assert not list(offline.glob("wandb/offline-run-*"))
