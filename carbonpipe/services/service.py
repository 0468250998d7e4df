"""What a local service is (``Service``) and the one lifecycle every service goes through.

Kafka and FerretDB differ only in how they are probed, which ports they need and what command
runs them; ``start``/``stop``/``wait_ready`` are written once here. Every start is idempotent
(a healthy service is left alone, one run by someone else is used, not replaced) and every
error names the log to read or the setting to change.
"""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from carbonpipe.core.config import Settings
from carbonpipe.core.layout import Layout
from carbonpipe.services import process
from carbonpipe.services.process import StackError


def say(msg: str) -> None:
    """Progress of the services, prefixed so it stands out among the services' own output."""
    print(f"[stack] {msg}", flush=True)


def home_layout(settings: Settings) -> Layout:
    """The home folder with an absolute path: services run in other working directories."""
    return Layout(settings.layout.home.resolve())


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Service:
    """One local service: how to probe it, where it listens, and how to run it."""

    name: str  # also the pid file's name and the ``--services`` value
    program: str  # what ``status`` and the start message call the process
    healthy: Callable[[Settings], bool]  # answers a real request, not just an open port
    address: Callable[[Settings], str]
    ports: Callable[[Settings], list[tuple[str, int]]]  # must be free before we start
    port_setting: str  # the setting to change when a port is taken
    log: Callable[[Layout], Path]  # the log to read when it misbehaves
    output: Callable[[Layout], Path]  # where its stdout/stderr go
    prepare: Callable[[Settings, Layout], tuple[list[str], Path]]  # -> (command, cwd)

    def pid_file(self, settings: Settings) -> process.PidFile:
        return process.PidFile(home_layout(settings).pid_file(self.name))

    def running_pid(self, settings: Settings) -> int | None:
        """Pid of the process we started, or None (a stale pid file is removed)."""
        proc = self.pid_file(settings).alive()
        return proc.pid if proc else None

    def wait_ready(self, settings: Settings, timeout_s: float) -> None:
        """Block until the service answers; fail fast if our process dies, naming the log."""
        lay = home_layout(settings)
        ours = self.pid_file(settings)
        process.wait_healthy(lambda: self.healthy(settings), self.name, self.log(lay),
                             timeout_s, ours if ours.alive() else None)

    def start(self, settings: Settings, wait: bool = True,
              timeout_s: float = 90.0) -> int | None:
        """Start unless it already runs; returns our pid (None: someone else's serves)."""
        lay = home_layout(settings)
        with process.locked(lay.run, self.name):
            pid = self.running_pid(settings)
            fresh, t0 = pid is None, time.monotonic()
            if fresh:
                pid = self._spawn(settings, lay)
                if pid is None:
                    return None
            if wait:
                self.wait_ready(settings, timeout_s)
                if fresh:
                    say(f"{self.name}: ready in {time.monotonic() - t0:.1f}s")
            return pid

    def _spawn(self, settings: Settings, lay: Layout) -> int | None:
        address = self.address(settings)
        if self.healthy(settings):
            say(f"{self.name}: something not started by carbonpipe already answers on "
                f"{address}; using it")
            return None
        for host, port in self.ports(settings):
            if port_open(host, port):
                raise StackError(f"{self.name}: port {host}:{port} is taken by another "
                                 f"program; free it or set {self.port_setting} to another port")
        cmd, cwd = self.prepare(settings, lay)
        proc = process.spawn(cmd, cwd, self.pid_file(settings), self.output(lay))
        say(f"{self.name}: started {self.program} pid {proc.pid} on {address} "
            f"(log {self.log(lay)})")
        return proc.pid

    def stop(self, settings: Settings, timeout_s: float = 30.0) -> bool:
        """SIGTERM the process group we started, SIGKILL after ``timeout_s``; True if one ran."""
        lay = home_layout(settings)
        with process.locked(lay.run, self.name):
            t0 = time.monotonic()
            proc = process.stop(self.pid_file(settings), timeout_s, on_kill=lambda: say(
                f"{self.name}: no exit after {timeout_s:.0f}s of SIGTERM, sending SIGKILL"))
        if proc is None:
            return False
        say(f"{self.name}: stopped pid {proc.pid} in {time.monotonic() - t0:.1f}s")
        return True


def names_arg(known: tuple[str, ...], what: str) -> Callable[[str], list[str]]:
    """An argparse type for a comma-separated subset of ``known``: a bad name is a one-line
    usage error listing the choices, not a traceback later."""

    def parse(value: str) -> list[str]:
        names = [s.strip() for s in value.split(",") if s.strip()]
        bad = [s for s in names if s not in known]
        if bad or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {what}(s) {bad}; pick from {', '.join(known)}")
        return names

    return parse
