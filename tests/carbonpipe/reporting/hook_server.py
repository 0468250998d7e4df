"""A local Slack-like webhook receiver for tests: records each JSON body, answers as told."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


class Hook(HTTPServer):
    def __init__(self, answers: list[int]) -> None:
        self.answers: list[int] = list(answers)
        self.bodies: list[Any] = []
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/services/T0/B0/secret-token"


class Handler(BaseHTTPRequestHandler):
    server: Hook

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(json.loads(body))
        code = self.server.answers.pop(0) if self.server.answers else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *a: Any) -> None:
        pass


@contextmanager
def running(answers: list[int] | None = None) -> Iterator[Hook]:
    srv = Hook(answers or [])
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
