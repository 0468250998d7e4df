"""Fixtures for the intensity tests: a local HTTP server replaying recorded provider bodies,
and access to ../shared (skipped with a clear message where it is absent)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from carbonpipe.core.config import Settings, load_settings

SHARED_ROOT = load_settings().shared_dir
SHARED_FIXTURES = SHARED_ROOT / "fixtures" / "providers"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay_s: float = 0.0


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


Route = Callable[["Seen"], Reply] | Reply | list[Reply]


class FixtureServer:
    """http.server on 127.0.0.1:<random>, routes = (regex on path, Reply | [Reply...] | fn)."""

    def __init__(self) -> None:
        self.routes: list[tuple[re.Pattern[str], Route]] = []
        self.requests: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                seen = Seen(parts.path, parse_qs(parts.query), dict(self.headers.items()))
                outer.requests.append(seen)
                reply = outer._reply(seen)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def route(self, pattern: str, reply: Route) -> None:
        self.routes.insert(0, (re.compile(pattern), reply))

    def _reply(self, seen: Seen) -> Reply:
        for pat, r in self.routes:
            if pat.fullmatch(seen.path):
                if isinstance(r, list):
                    return r.pop(0) if len(r) > 1 else r[0]
                return r(seen) if callable(r) else r
        return Reply(404, b'{"error": "no route in test server"}')

    def hits(self, pattern: str) -> int:
        return sum(1 for s in self.requests if re.fullmatch(pattern, s.path))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    s = FixtureServer()
    yield s
    s.close()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(
            f"recorded provider bodies not found at {SHARED_FIXTURES} "
            "(../shared is absent in this checkout)"
        )
    return SHARED_FIXTURES


def fixture_reply(path: Path, status: int = 200, **headers: str) -> Reply:
    ctype = "text/html" if path.suffix == ".html" else "application/json"
    return Reply(status, path.read_bytes(), {"Content-Type": ctype, **headers})


def fixture_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for tests: fast retries, no cache unless asked, state under tmp_path."""

    def make(**kw: Any) -> Settings:
        base: dict[str, Any] = {
            "home": tmp_path,
            "http_timeout_s": 2.0,
            "http_retries": 2,
            "http_backoff_s": 0.02,
            "cache_ttl_s": 0.0,
        }
        base.update(kw)
        return load_settings(**base)

    return make
