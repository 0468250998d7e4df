"""The supervisor with real processes: a pid file is trusted only when pid AND create time
match, so a stale file never gets an unrelated process signalled (services and apps alike);
stop is SIGTERM to the group, then SIGKILL after the grace; start-up waits name the log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from carbonpipe import cli
from carbonpipe.core.config import Settings, get_settings, load_settings
from carbonpipe.services import apps, process, stack
from carbonpipe.services.process import PidFile, StackError

IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "home", kafka_bootstrap_servers="127.0.0.1:1",
                         ferretdb_port=2)


@pytest.fixture()
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process leading its own group, as a reused pid would name after a reboot."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def _still_running(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is None


def _stale_records(pid: int) -> list[str]:
    """Pid files naming ``pid`` that are not ours: wrong start time, pre-reboot ticks, bare pid."""
    started = psutil.Process(pid).create_time()
    return [f"{pid} {started - 3600.0!r}\n", f"{pid} 123456\n", f"{pid}\n"]


@pytest.mark.parametrize("service", ["kafka", "mongo"])
def test_stale_service_pid_file_never_signals(settings: Settings, service: str,
                                              bystander: subprocess.Popen[bytes]) -> None:
    pid_file = settings.layout.pid_file(service)
    for record in _stale_records(bystander.pid):
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(record)
        assert stack.running_pid(settings, service) is None
        assert not pid_file.exists()  # the stale file is dropped on sight
        pid_file.write_text(record)
        assert stack.stop_service(settings, service, timeout_s=1) is False
        assert _still_running(bystander), record


@pytest.mark.parametrize("app", apps.APPS)
def test_stale_app_pid_file_never_signals(settings: Settings, app: str,
                                          bystander: subprocess.Popen[bytes]) -> None:
    pid_file = settings.layout.pid_file(f"app-{app}")
    for record in _stale_records(bystander.pid):
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(record)
        assert apps.running(settings, app) is None
        pid_file.write_text(record)
        assert apps.stop_app(settings, app, timeout_s=1) is False
        assert _still_running(bystander), record
        assert not pid_file.exists()


def test_down_commands_leave_a_reused_pid_alone(
    settings: Settings, bystander: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``carbonpipe apps down`` and ``carbonpipe down`` after a "reboot": every pid file stale."""
    monkeypatch.setenv("CARBONPIPE_HOME", str(settings.home))
    get_settings.cache_clear()
    names = ["kafka", "mongo", *(f"app-{a}" for a in apps.APPS)]
    try:
        for name in names:
            settings.layout.pid_file(name).parent.mkdir(parents=True, exist_ok=True)
            settings.layout.pid_file(name).write_text(f"{bystander.pid} 7\n")
        assert cli.main(["apps", "down"]) == 0
        assert cli.main(["down"]) == 0
    finally:
        get_settings.cache_clear()
    assert _still_running(bystander)


def test_own_process_is_recognised(tmp_path: Path) -> None:
    pf = PidFile(tmp_path / "me.pid")
    pf.write(os.getpid())
    proc = pf.alive()
    assert proc is not None and proc.pid == os.getpid()


def test_pid_file_is_written_atomically_and_records_create_time(tmp_path: Path) -> None:
    pf = PidFile(tmp_path / "run" / "x.pid")
    pf.write(os.getpid())
    inode = pf.path.stat().st_ino
    pf.write(os.getpid())
    assert pf.path.stat().st_ino != inode  # replaced by rename, never rewritten in place
    assert [p.name for p in pf.path.parent.iterdir()] == ["x.pid"]  # no temp file left
    rec = pf.read()
    assert rec is not None and rec[0] == os.getpid()
    assert rec[1] == psutil.Process().create_time()


def _spawn(tmp_path: Path, code: str) -> tuple[PidFile, Path, psutil.Process]:
    pf, log = PidFile(tmp_path / "run" / "child.pid"), tmp_path / "logs" / "child.log"
    proc = process.spawn([sys.executable, "-c", code], tmp_path, pf, log)
    process.wait_healthy(lambda: "ready" in log.read_text(), "child", log, 30, pf)
    return pf, log, proc


def test_spawn_detaches_into_its_own_group_with_a_log(tmp_path: Path) -> None:
    pf, log, proc = _spawn(tmp_path, "print('ready', flush=True); import time; time.sleep(60)")
    try:
        assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
        assert os.getsid(proc.pid) == proc.pid
        assert pf.alive() == proc
        assert log.read_text() == "ready\n"
    finally:
        assert process.stop(pf, grace_s=10) == proc
    assert not pf.path.exists()


def test_stop_kills_after_the_grace_when_sigterm_is_ignored(tmp_path: Path) -> None:
    pf, _, proc = _spawn(tmp_path, IGNORES_TERM)
    killed: list[bool] = []
    t0 = time.monotonic()
    assert process.stop(pf, grace_s=1.0, on_kill=lambda: killed.append(True)) == proc
    assert time.monotonic() - t0 >= 1.0  # SIGTERM was given its grace
    assert killed == [True]
    assert not proc.is_running()
    assert not pf.path.exists()


def test_stop_terms_the_whole_group_without_waiting_the_grace(tmp_path: Path) -> None:
    """Children in the group (Spark's JVM under ``carbonpipe stream``) stop with the leader."""
    code = ("import subprocess, time; c = subprocess.Popen(['sleep', '60']); "
            "print('ready', c.pid, flush=True); time.sleep(60)")
    pf, log, proc = _spawn(tmp_path, code)
    child = psutil.Process(int(log.read_text().split()[1]))
    t0 = time.monotonic()
    assert process.stop(pf, grace_s=20) == proc
    assert time.monotonic() - t0 < 10
    assert not proc.is_running()
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_health_wait_times_out_naming_the_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "svc.log"
    with pytest.raises(StackError, match=f"svc not ready after 0s; read {log}"):
        process.wait_healthy(lambda: False, "svc", log, timeout_s=0.3)


def test_health_wait_fails_fast_when_the_process_dies(tmp_path: Path) -> None:
    pf, log = PidFile(tmp_path / "run" / "dies.pid"), tmp_path / "logs" / "dies.log"
    process.spawn([sys.executable, "-c", "raise SystemExit(3)"], tmp_path, pf, log)
    t0 = time.monotonic()
    with pytest.raises(StackError, match=f"dies exited during start-up; read {log}"):
        process.wait_healthy(lambda: False, "dies", log, timeout_s=60, pid_file=pf)
    assert time.monotonic() - t0 < 30


def test_apps_start_stop_through_the_supervisor(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apps, "app_command", lambda *a: ["sleep", "60"])
    pid = apps.start_app(settings, "feeder")
    try:
        assert apps.running(settings, "feeder") == pid
        assert apps.start_app(settings, "feeder") == pid  # idempotent
        assert apps.log_file(settings, "feeder").exists()
    finally:
        assert apps.stop_all(settings) == ["feeder"]
    assert apps.running(settings, "feeder") is None
    assert not settings.layout.pid_file("app-feeder").exists()
