"""The pipeline's own long-running processes (feeder, streaming job, budget alerts,
dashboard), in the background with pid files and logs in the home folder (``Layout.run``,
``Layout.logs``).

``carbonpipe up`` starts the services (Kafka, MongoDB); ``carbonpipe apps up`` starts these on
top. ``make demo`` and ``make stop`` drive both. They are supervised exactly like the services
(``carbonpipe.services.process``): a stale pid file never gets an unrelated process signalled.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from carbonpipe.core.config import REPO_ROOT, Settings, get_settings
from carbonpipe.services import process
from carbonpipe.services.service import home_layout, names_arg

APPS = ("feeder", "stream", "alerts", "dashboard")  # start order; stopped in reverse


def app_command(name: str, settings: Settings, zones: str) -> list[str]:
    cli = [sys.executable, "-m", "carbonpipe.cli"]
    if name == "feeder":
        return [*cli, "feed", "--trace-replay", "--zones", zones]
    if name == "stream":
        return [*cli, "stream"]
    if name == "alerts":  # budgets evaluated every CARBONPIPE_ALERTS_INTERVAL_S
        return [*cli, "alerts"]
    if name == "dashboard":
        return [*cli, "dashboard", "--port", str(settings.dashboard_port)]
    raise ValueError(f"unknown app {name!r}; known: {', '.join(APPS)}")


def _pid_file(settings: Settings, name: str) -> process.PidFile:
    return process.PidFile(home_layout(settings).pid_file(f"app-{name}"))


def log_file(settings: Settings, name: str) -> Path:
    return home_layout(settings).log_file(name)


def running(settings: Settings, name: str) -> int | None:
    """Pid of the app we started, or None (a stale pid file is removed, never trusted)."""
    proc = _pid_file(settings, name).alive()
    return proc.pid if proc else None


def start_app(settings: Settings, name: str, zones: str = "US-CAL-CISO") -> int:
    """Start ``name`` in the background unless it already runs; returns its pid."""
    with process.locked(home_layout(settings).run, f"app-{name}"):
        pid = running(settings, name)
        if pid:
            return pid
        cmd = app_command(name, settings, zones)
        proc = process.spawn(cmd, REPO_ROOT, _pid_file(settings, name), log_file(settings, name))
        return proc.pid


def stop_app(settings: Settings, name: str, timeout_s: float = 30.0) -> bool:
    """SIGTERM the app's process group (Spark's JVM too), SIGKILL after ``timeout_s``."""
    with process.locked(home_layout(settings).run, f"app-{name}"):
        return process.stop(_pid_file(settings, name), timeout_s) is not None


def stop_all(settings: Settings) -> list[str]:
    """Stop every app we run, last started first; returns the ones that were running."""
    return [name for name in reversed(APPS) if stop_app(settings, name)]


def wait_http(url: str, timeout_s: float) -> bool:
    """True once ``url`` answers without a server error (the dashboard is up)."""
    import httpx

    def answers() -> bool:
        try:
            return httpx.get(url, timeout=2.0).status_code < 500
        except httpx.HTTPError:
            return False

    return process.poll(answers, timeout_s, interval_s=1.0)


def _up(args: argparse.Namespace) -> int:
    settings = get_settings()
    for name in args.apps:
        pid = start_app(settings, name, args.zones)
        print(f"  {name:<9} pid {pid:<7} log {log_file(settings, name)}")
    return 0


def _down(args: argparse.Namespace) -> int:
    for name in stop_all(get_settings()):
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
    p = sub.add_parser("apps", help="start/stop the feeder, streaming job, alerts and dashboard")
    ap = p.add_subparsers(dest="apps_command", metavar="up|down|status")
    up = ap.add_parser("up")
    up.add_argument("--apps", type=names_arg(APPS, "app"), default=list(APPS),
                    help=f"comma-separated subset of {','.join(APPS)} (default: all)")
    up.add_argument("--zones", default="US-CAL-CISO", help="zones the feeder replays")
    up.set_defaults(func=_up)
    ap.add_parser("down").set_defaults(func=_down)
    ap.add_parser("status").set_defaults(func=_status)
