"""The one service lifecycle, run on a real tiny server (``python -m http.server``): start is
idempotent, a server we did not start is used and never stopped, a taken port says which
setting to change, stop removes the pid file.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbonpipe.core.config import Settings, load_settings
from carbonpipe.core.layout import Layout
from carbonpipe.services.process import StackError
from carbonpipe.services.service import Service, port_open


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


@pytest.fixture()
def web(tmp_path: Path) -> tuple[Service, Settings]:
    port = _free_port()

    def prepare(settings: Settings, layout: Layout) -> tuple[list[str], Path]:
        return _server(port), layout.home

    svc = Service(
        name="web", program="http.server", healthy=lambda s: port_open("127.0.0.1", port),
        address=lambda s: f"127.0.0.1:{port}", ports=lambda s: [("127.0.0.1", port)],
        port_setting="WEB_PORT", log=lambda lay: lay.logs / "web.log",
        output=lambda lay: lay.logs / "web.log", prepare=prepare,
    )
    home = tmp_path / "home"
    home.mkdir()
    return svc, load_settings(home=home)


def test_start_is_idempotent_and_stop_removes_the_pid_file(web: tuple[Service, Settings]) -> None:
    svc, s = web
    pid = svc.start(s, timeout_s=30)
    try:
        assert pid is not None and svc.running_pid(s) == pid
        assert svc.start(s, timeout_s=30) == pid
    finally:
        assert svc.stop(s, timeout_s=10)
    assert svc.running_pid(s) is None
    assert not s.layout.pid_file("web").exists()
    assert not svc.stop(s)


@pytest.fixture()
def foreign(web: tuple[Service, Settings]) -> Iterator[subprocess.Popen[bytes]]:
    """The same server, started by someone else."""
    svc, s = web
    port = int(svc.address(s).rsplit(":", 1)[1])
    proc = subprocess.Popen(_server(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        svc.wait_ready(s, 30)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_server_we_did_not_start_is_used_not_stopped(
    web: tuple[Service, Settings], foreign: subprocess.Popen[bytes]
) -> None:
    svc, s = web
    assert svc.start(s, timeout_s=5) is None
    assert not svc.stop(s)
    assert foreign.poll() is None


def test_a_taken_port_names_the_setting(web: tuple[Service, Settings]) -> None:
    svc, s = web
    with socket.socket() as sock:  # listening, but not what the probe calls healthy
        host, port = svc.ports(s)[0]
        sock.bind((host, port))
        sock.listen()
        taken = Service(**{**svc.__dict__, "healthy": lambda s: False})
        with pytest.raises(StackError, match=f"port {host}:{port} is taken.*set WEB_PORT"):
            taken.start(s, wait=False)
