"""Ways to attach: ``carbonpipe collect -- CMD``, ``--pid N``, ``track``, callbacks."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import carbonpipe
from carbonpipe.core.config import Settings
from carbonpipe.core.contracts import validation_errors
from collector import progress
from collector.publish import MemorySink
from collector.track import is_measuring_rank, track


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONPIPE_")}
    env.update(CARBONPIPE_HOME=str(tmp_path / "home"), CARBONPIPE_ZONE="GB")
    return env


def _collect(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carbonpipe.cli", "collect", *args],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_wrap_returns_command_exit_code_and_emits_events(tmp_path: Path) -> None:
    child = (
        "import time, collector.progress as p\n"
        "p.report(epoch=2, step=7, force=True)\n"
        "time.sleep(0.7)\n"
        "raise SystemExit(3)\n"
    )
    events_file = tmp_path / "events.jsonl"
    res = _collect(
        tmp_path,
        "--run-id",
        "wrap-1",
        "--user",
        "u",
        "--model",
        "m",
        "--interval",
        "0.2",
        "--tag",
        "schedule_decision_id=d1",
        "--events",
        str(events_file),
        "--no-kafka",
        "--",
        sys.executable,
        "-c",
        child,
    )
    assert res.returncode == 3, res.stderr
    assert not _events(res.stdout)  # the command's stdout is the command's alone
    evs = _events(events_file.read_text())
    assert len(evs) >= 2 and evs[-1]["event_type"] == "end"
    assert [e["seq"] for e in evs] == list(range(len(evs)))
    for e in evs:
        assert validation_errors(e) == [], e
        assert e["schedule_decision_id"] == "d1" and e["region"] == "GB"
    assert any(e.get("epoch") == 2 and e.get("step") == 7 for e in evs)  # from the child


def test_pid_attach_stops_on_sigterm_with_end_event(tmp_path: Path) -> None:
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "carbonpipe.cli",
                "collect",
                "--run-id",
                "pid-1",
                "--user",
                "u",
                "--model",
                "m",
                "--interval",
                "0.2",
                "--stdout",
                "--pid",
                str(target.pid),
            ],
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        target.kill()
        target.wait()
    assert proc.returncode == 0, err
    evs = _events(out)
    assert evs and evs[-1]["event_type"] == "end" and evs[-1]["pid"] == target.pid


def test_collect_errors_name_the_fix(tmp_path: Path) -> None:
    env_nozone = _env(tmp_path)
    del env_nozone["CARBONPIPE_ZONE"]
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "carbonpipe.cli",
            "collect",
            "--run-id",
            "r",
            "--user",
            "u",
            "--model",
            "m",
            "--zone",
            "FRA",
            "--",
            "true",
        ],
        env=env_nozone,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "Did you mean FR" in res.stderr, res.stderr
    assert "(or pass --zone Z)" not in res.stderr  # it was passed
    res = _collect(tmp_path, "--run-id", "r", "--user", "u", "--model", "m")
    assert res.returncode == 2 and "--pid" in res.stderr


def test_track_context_manager_and_decorator(settings: Settings) -> None:
    sink = MemorySink()
    kw: dict[str, Any] = dict(
        run_id="trk",
        user_id="u",
        model_name="m",
        interval_s=0.2,
        sink=sink,
        home=settings.home,
        zone="GB",
    )
    with carbonpipe.track(**kw) as t:
        assert t.collector is not None
        progress.report(epoch=1, step=5)
        time.sleep(0.5)
    progress.reset()
    assert sink.events[-1]["event_type"] == "end"
    assert any(e.get("step") == 5 for e in sink.events)

    sink2 = MemorySink()

    @track(**{**kw, "run_id": "trk2", "sink": sink2})
    def train(x: int) -> int:
        time.sleep(0.3)
        return x * 2

    assert train(21) == 42
    assert sink2.events[-1]["event_type"] == "end" and sink2.events[0]["seq"] == 0


def test_only_local_rank_zero_measures(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_measuring_rank({})
    assert is_measuring_rank({"LOCAL_RANK": "0"})
    assert not is_measuring_rank({"LOCAL_RANK": "1"})
    assert not is_measuring_rank({"CARBONPIPE_COLLECTOR_ACTIVE": "1"})
    monkeypatch.setenv("LOCAL_RANK", "3")
    with track(run_id="r", user_id="u", model_name="m", sink=MemorySink()) as t:
        assert t.collector is None  # joins the run by run_id, starts nothing


@pytest.mark.parametrize("fw", ["lightning", "huggingface", "keras"])
def test_callback_modules_import_without_frameworks(fw: str) -> None:
    heavy = {"torch", "lightning", "pytorch_lightning", "transformers", "keras", "tensorflow"}
    before = heavy & set(sys.modules)
    mod = importlib.import_module(f"collector.callbacks.{fw}")
    assert heavy & set(sys.modules) == before  # the framework is imported only when used
    with pytest.raises(AttributeError):
        mod.NotThere  # noqa: B018
