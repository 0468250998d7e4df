"""Multi-zone plans run elsewhere only through a configured launcher; otherwise they advise."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from carbonpipe.scheduling.policies import Plan, ScheduleError
from carbonpipe.scheduling.zone_launch import parse_launchers, zone_decision


def _plan(policy: str, zone: str, home: str) -> Plan:
    t = datetime(2020, 6, 1, tzinfo=timezone.utc)
    return Plan(policy, zone, ((t, t),), 3600.0, None, 50.0, 200.0, home)


def test_launchers_parse_and_reject_garbage() -> None:
    assert parse_launchers("de=ssh gpu-de,FR=kubectl exec x --") == {
        "DE": ["ssh", "gpu-de"], "FR": ["kubectl", "exec", "x", "--"]}
    with pytest.raises(ScheduleError, match="ZONE=command"):
        parse_launchers("DE")


def test_remote_zone_without_launcher_only_advises() -> None:
    zd = zone_decision(_plan("multizone", "FR", "GB"), ["python", "t.py"], "DE=ssh de")
    assert zd.advise_only and zd.cmd == ["python", "t.py"]
    assert "runs in zone FR" in zd.message
    assert "nothing was started" in zd.message


def test_remote_zone_with_launcher_prefixes_the_command() -> None:
    zd = zone_decision(_plan("multizone", "FR", "GB"), ["python", "t.py"], "FR=ssh fr-host")
    assert not zd.advise_only and zd.cmd == ["ssh", "fr-host", "python", "t.py"]
    assert "runs in zone FR" in zd.message


@pytest.mark.parametrize(("policy", "zone"), [("window", "GB"), ("multizone", "GB")])
def test_home_zone_runs_locally(policy: str, zone: str) -> None:
    zd = zone_decision(_plan(policy, zone, "GB"), ["x"], "")
    assert zd == zone_decision(_plan(policy, zone, "GB"), ["x"], "FR=ssh f")
    assert not zd.advise_only and zd.cmd == ["x"] and zd.message == ""


@pytest.mark.shared
@pytest.mark.parametrize("launcher", [None, "FR=env"])
def test_cli_multizone_advises_or_launches(
    tmp_path: Path, launcher: str | None, traces_dir: Path
) -> None:
    root = traces_dir
    marker = tmp_path / "ran"
    env = {**os.environ, "CARBONPIPE_HOME": str(tmp_path / "home")}
    env.pop("CARBONPIPE_ZONE_LAUNCHERS", None)
    if launcher:
        env["CARBONPIPE_ZONE_LAUNCHERS"] = launcher
    traces = f"{root / 'gb-2020.csv'},{root / 'fr-2020.csv'}"  # FR is far cleaner than GB
    proc = subprocess.run(
        [sys.executable, "-m", "carbonpipe.cli", "schedule", "--policy", "multizone",
         "--trace", traces, "--duration", "30m", "--deadline", "2h", "--time-scale", "7200",
         "--no-collect", "--", sys.executable, "-c",
         "import sys; open(sys.argv[1], 'w').write('x')", str(marker)],
        env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "runs in zone FR" in proc.stderr
    assert marker.exists() == bool(launcher)
