"""The shared HTTP client: retries, 429 Retry-After, timeouts, non-JSON bodies, cache, redaction."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from carbonpipe.intensity.errors import BadRequest, ProviderUnavailable, RateLimited
from carbonpipe.intensity.http import HttpJsonClient, TTLCache, parse_retry_after

from .conftest import FixtureServer, Reply

OK = Reply(200, b'{"ok": 1}')


def client(server: FixtureServer, **kw: object) -> HttpJsonClient:
    args: dict[str, object] = {"timeout_s": 3.0, "retries": 2, "backoff_s": 0.01}
    args.update(kw)
    return HttpJsonClient("test", server.url, **args)  # type: ignore[arg-type]


class FakeTime:
    """The client's injected clock and sleep: waits are recorded, never slept in real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def test_429_waits_for_retry_after_then_succeeds(server: FixtureServer) -> None:
    server.route(
        r"/x",
        [
            Reply(
                429,
                b'{"error": "slow down"}',
                {"Content-Type": "application/json", "Retry-After": "1"},
            ),
            OK,
        ],
    )
    t = FakeTime()
    assert client(server, sleep=t.sleep, clock=t.clock).get_json("/x") == {"ok": 1}
    assert t.sleeps == [1.0] and server.hits("/x") == 2  # Retry-After obeyed, not backoff


def test_429_beyond_the_budget_fails_fast(server: FixtureServer) -> None:
    server.route(r"/x", Reply(429, b"", {"Retry-After": "120"}))
    t = FakeTime()
    with pytest.raises(RateLimited, match="exceeds") as err:
        client(server, sleep=t.sleep, clock=t.clock).get_json("/x")
    assert t.sleeps == [] and err.value.status == 429 and server.hits("/x") == 1


def test_retry_after_forms() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("2") == 2.0
    later = format_datetime(datetime(2024, 1, 1, 12, 0, 30, tzinfo=timezone.utc), usegmt=True)
    assert parse_retry_after(later, now) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_5xx_is_retried_with_backoff_then_unavailable(server: FixtureServer) -> None:
    server.route(r"/x", Reply(503, b"upstream down", {"Content-Type": "text/plain"}))
    t = FakeTime()
    with pytest.raises(ProviderUnavailable, match="upstream down") as err:
        client(server, sleep=t.sleep, clock=t.clock).get_json("/x")
    assert err.value.status == 503 and server.hits("/x") == 3
    assert t.sleeps == [0.01, 0.02]  # exponential backoff between the three attempts


def test_5xx_then_recovery(server: FixtureServer) -> None:
    server.route(r"/x", [Reply(500, b"{}"), Reply(502, b"{}"), OK])
    assert client(server).get_json("/x") == {"ok": 1}


def test_hanging_server_times_out_within_the_budget(server: FixtureServer) -> None:
    server.route(r"/x", Reply(200, b"{}", delay_s=3.0))
    # Without the timeout the client would get {} after 3 s and return it: raising proves it.
    with pytest.raises(ProviderUnavailable, match="timed out"):
        client(server, timeout_s=0.4).get_json("/x")


def test_connection_refused_is_unavailable() -> None:
    c = HttpJsonClient("test", "http://127.0.0.1:9", timeout_s=0.5, retries=1, backoff_s=0.01)
    with pytest.raises(ProviderUnavailable, match="connection failed") as err:
        c.get_json("/x")
    assert err.value.status is None


def test_non_json_success_and_4xx_bodies(server: FixtureServer) -> None:
    server.route(r"/html", Reply(200, b"<html>maintenance</html>", {"Content-Type": "text/html"}))
    server.route(r"/bad", Reply(422, b"", {"Content-Type": "text/plain"}))
    with pytest.raises(ProviderUnavailable, match="not JSON"):
        client(server).get_json("/html")
    with pytest.raises(BadRequest) as err:
        client(server).get_json("/bad")
    assert err.value.status == 422


def test_ttl_cache_avoids_repeat_calls(server: FixtureServer, tmp_path: Path) -> None:
    server.route(r"/x", OK)
    clock = [1000.0]
    c = client(server, cache=TTLCache(60, clock=lambda: clock[0]))
    assert c.get_json("/x", {"zone": "GB"}) == c.get_json("/x", {"zone": "GB"}) == {"ok": 1}
    assert server.hits("/x") == 1
    c.get_json("/x", {"zone": "DE"})
    assert server.hits("/x") == 2
    clock[0] += 61
    c.get_json("/x", {"zone": "GB"})
    assert server.hits("/x") == 3
    # on disk: a second client (another process) reuses the answer
    client(server, cache=TTLCache(60, tmp_path)).get_json("/x")
    client(server, cache=TTLCache(60, tmp_path)).get_json("/x")
    assert server.hits("/x") == 4 and len(list(tmp_path.glob("*.json"))) == 1


def test_secrets_are_redacted_from_errors(server: FixtureServer) -> None:
    server.route(r"/x", Reply(400, b'{"error": "bad key TOPSECRET"}'))
    c = client(server, secrets=["TOPSECRET"])
    with pytest.raises(BadRequest) as err:
        c.get_json("/x", {"key": "TOPSECRET"})
    assert "TOPSECRET" not in str(err.value) and "***" in str(err.value)
