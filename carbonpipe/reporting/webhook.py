"""Alerts to a Slack-compatible incoming webhook: ``{"text": ...}``, retried with back-off.

The webhook URL is a credential (whoever has it may post to the channel): it is shown only as
``scheme://host/***`` (``redact_webhook``), never in logs, errors or ``repr``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

log = logging.getLogger("carbonpipe.alerts")
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def redact_webhook(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/***"


def slack_escape(text: str) -> str:
    """Slack reads ``<...>`` as links and mentions and ``&`` as an entity: escape all three
    (user ids and tags in the text are anyone's)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def post(url: str, text: str, retries: int, backoff_s: float, timeout_s: float = 10.0,
         sleep: Callable[[float], None] = time.sleep) -> bool:
    """POST ``{"text": text}``; True on a 2xx. Transient failures (connection errors, 408,
    429, 5xx) are retried ``retries`` times, waiting ``backoff_s`` x 2^n; other 4xx are final."""
    import httpx

    where = redact_webhook(url)
    for attempt in range(retries + 1):
        try:
            r = httpx.post(url, json={"text": slack_escape(text)}, timeout=timeout_s)
            if 200 <= r.status_code < 300:
                return True
            log.warning("webhook %s answered %s (attempt %d)", where, r.status_code, attempt + 1)
            if r.status_code not in RETRY_STATUS:
                return False
        except httpx.HTTPError as exc:
            log.warning("webhook %s failed: %s (attempt %d)", where, type(exc).__name__,
                        attempt + 1)  # fmt: skip
        if attempt < retries:
            sleep(backoff_s * 2**attempt)
    return False
