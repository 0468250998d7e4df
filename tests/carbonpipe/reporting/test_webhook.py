"""The webhook client against a real local HTTP server: Slack JSON, retries, no secret in logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from carbonpipe.reporting.webhook import post, redact_webhook, slack_escape
from tests.carbonpipe.reporting.hook_server import Hook, running


@pytest.fixture()
def hook(request: pytest.FixtureRequest) -> Iterator[Hook]:
    with running(getattr(request, "param", [])) as srv:
        yield srv


def url(srv: Hook) -> str:
    return srv.url


@pytest.mark.parametrize("hook", [[503, 500]], indirect=True)
def test_transient_failures_are_retried_with_backoff(hook: Hook,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []
    with caplog.at_level(logging.WARNING):
        assert post(url(hook), "a <b> & c", retries=3, backoff_s=0.5, sleep=waits.append)
    assert waits == [0.5, 1.0] and len(hook.bodies) == 3
    assert hook.bodies[-1] == {"text": "a &lt;b&gt; &amp; c"}
    assert "secret-token" not in caplog.text and "127.0.0.1/***" in caplog.text


@pytest.mark.parametrize("hook", [[404]], indirect=True)
def test_a_client_error_is_final(hook: Hook) -> None:
    assert not post(url(hook), "x", retries=3, backoff_s=0, sleep=lambda s: None)
    assert len(hook.bodies) == 1


def test_redaction_and_escaping() -> None:
    assert redact_webhook("https://hooks.slack.com/services/T/B/xyz") == "https://hooks.slack.com/***"
    assert slack_escape("<@U1>") == "&lt;@U1&gt;"
