"""The pipeline's own long-running processes (feeder, streaming job, dashboard), in the
background with pid files and logs under ``<home>/run`` and ``<home>/logs``.

``carbonpipe up`` starts the services (Kafka, MongoDB); ``carbonpipe apps up`` starts these on
top. ``make demo`` and ``make stop`` drive both.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from carbonpipe.core.config import REPO_ROOT, Settings, get_settings

APPS = ("feeder", "stream", "dashboard")


def app_command(name: str, settings: Settings, zones: str) -> list[str]:
    cli = [sys.executable, "-m", "carbonpipe.cli"]
    if name == "feeder":
        return [*cli, "feed", "--trace-replay", "--zones", zones]
    if name == "stream":
        return [*cli, "stream"]
    if name == "dashboard":
        return [*cli, "dashboard", "--port", str(settings.dashboard_port)]
    raise ValueError(f"unknown app {name!r}; known: {', '.join(APPS)}")


def _pid_file(settings: Settings, name: str) -> Path:
    return Path(settings.home) / "run" / f"app-{name}.pid"


def log_file(settings: Settings, name: str) -> Path:
    return Path(settings.home) / "logs" / f"{name}.log"


def running(settings: Settings, name: str) -> int | None:
    pf = _pid_file(settings, name)
    try:
        pid = int(pf.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def start_app(settings: Settings, name: str, zones: str = "US-CAL-CISO") -> int:
    pid = running(settings, name)
    if pid:
        return pid
    log = log_file(settings, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    _pid_file(settings, name).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            app_command(name, settings, zones), cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
            stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    _pid_file(settings, name).write_text(f"{proc.pid}\n")
    return proc.pid


def stop_app(settings: Settings, name: str, timeout_s: float = 30.0) -> bool:
    pid = running(settings, name)
    if not pid:
        _pid_file(settings, name).unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and running(settings, name):
        time.sleep(0.3)
    if running(settings, name):
        os.killpg(pid, signal.SIGKILL)
    _pid_file(settings, name).unlink(missing_ok=True)
    return True


def wait_http(url: str, timeout_s: float) -> bool:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    return False


def _up(args: argparse.Namespace) -> int:
    settings = get_settings()
    for name in args.apps.split(","):
        pid = start_app(settings, name, args.zones)
        print(f"  {name:<9} pid {pid:<7} log {log_file(settings, name)}")
    return 0


def _down(args: argparse.Namespace) -> int:
    settings = get_settings()
    for name in reversed(APPS):
        if stop_app(settings, name):
            print(f"  stopped {name}")
    return 0


def _status(args: argparse.Namespace) -> int:
    settings = get_settings()
    ok = True
    for name in APPS:
        pid = running(settings, name)
        ok &= pid is not None
        print(f"  {name:<9} {'running pid ' + str(pid) if pid else 'stopped'}")
    return 0 if ok else 1


def register(sub: Any) -> None:
    p = sub.add_parser("apps", help="start/stop the feeder, streaming job and dashboard")
    ap = p.add_subparsers(dest="apps_command", metavar="up|down|status")
    up = ap.add_parser("up")
    up.add_argument("--apps", default=",".join(APPS))
    up.add_argument("--zones", default="US-CAL-CISO", help="zones the feeder replays")
    up.set_defaults(func=_up)
    ap.add_parser("down").set_defaults(func=_down)
    ap.add_parser("status").set_defaults(func=_status)
