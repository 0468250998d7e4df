"""One robust JSON-over-HTTP client shared by the live providers.

Why one: timeouts, retries, 429 handling, caching, error typing and secret redaction must
behave the same for every provider, and be tested once.

* ``timeout_s`` is a *total* budget per question, retries included, so a dead provider costs
  the chain at most that long before it falls through.
* 5xx, timeouts and connection errors are retried with exponential backoff (``backoff_s``,
  doubling); 429 waits for ``Retry-After`` (seconds or HTTP date) when it fits in the budget.
* Successful JSON answers are cached for ``cache_ttl_s`` (memory, optionally disk).
* Secrets (tokens, passwords) are replaced by ``***`` in every error message and log line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from carbonpipe.core.fsutil import atomic_write_text
from carbonpipe.intensity.errors import (
    AuthError,
    BadRequest,
    CrossOriginRedirect,
    NotCovered,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)

log = logging.getLogger(__name__)
USER_AGENT = "carbonpipe-intensity/0.1 (+https://github.com/carbonpipe)"


class TTLCache:
    """Small TTL cache: memory always, a directory of JSON files when ``directory`` is set."""

    def __init__(
        self, ttl_s: float, directory: Path | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.ttl_s = ttl_s
        self.directory = directory
        self.clock = clock
        self._mem: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _file(self, key: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / (hashlib.sha256(key.encode()).hexdigest() + ".json")

    def get(self, key: str) -> Any | None:
        if self.ttl_s <= 0:
            return None
        now = self.clock()
        with self._lock:
            hit = self._mem.get(key)
        if hit and hit[0] > now:
            return hit[1]
        f = self._file(key)
        if f is not None and f.is_file():
            try:
                stored = json.loads(f.read_text(encoding="utf-8"))
                if stored["expires"] > now:
                    with self._lock:
                        self._mem[key] = (stored["expires"], stored["value"])
                    return stored["value"]
            except (OSError, ValueError, KeyError):
                pass  # a corrupt cache file is just a miss
        return None

    def put(self, key: str, value: Any) -> None:
        if self.ttl_s <= 0:
            return
        expires = self.clock() + self.ttl_s
        with self._lock:
            self._mem[key] = (expires, value)
        f = self._file(key)
        if f is not None:
            try:
                atomic_write_text(f, json.dumps({"expires": expires, "value": value}))
            except OSError as exc:
                log.debug("intensity cache write failed: %s", exc)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, port


def error_detail(resp: httpx.Response) -> str:
    """Human text of an error body: JSON ``error``/``message`` fields, or stripped HTML/text."""
    try:
        body = resp.json()
    except ValueError:
        text = re.sub(r"<[^>]+>", " ", resp.text)
        return " ".join(text.split())[:200] or resp.reason_phrase
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):  # UK: {"error": {"code": ..., "message": ...}}
            return str(err.get("message") or err.get("code") or err)
        parts = [str(body[k]) for k in ("error", "message") if body.get(k)]
        if parts:
            return ": ".join(parts)
    return json.dumps(body)[:200]


class HttpJsonClient:
    """GET JSON from one provider; raises the typed errors of ``errors.py``."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        timeout_s: float,
        retries: int,
        backoff_s: float = 0.5,
        cache: TTLCache | None = None,
        secrets: Sequence[str | None] = (),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.cache = cache
        self._secrets = [s for s in secrets if s]
        self._sleep = sleep
        self._clock = clock
        self._origin = _origin(httpx.URL(self.base_url))
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=True,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            event_hooks={"request": [self._same_origin_only]},
        )

    def _same_origin_only(self, request: httpx.Request) -> None:
        """Every request, redirects included, goes to the configured origin: httpx drops only
        ``Authorization`` across origins, not custom headers such as ``auth-token``."""
        if _origin(request.url) != self._origin:
            target = self.redact(str(request.url.copy_with(query=None)))
            raise CrossOriginRedirect(
                self.provider,
                f"redirected from {self.base_url} to {target}; "
                "not followed (the token goes to the configured host only). If the provider "
                "moved, set its base URL setting to the new address",
            )

    def add_secret(self, secret: str | None) -> None:
        if secret:
            self._secrets.append(secret)

    def redact(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    def close(self) -> None:
        self._client.close()

    def _fail(self, cls: type[ProviderError], msg: str, status: int | None) -> ProviderError:
        return cls(self.provider, self.redact(msg), status)

    def classify(self, resp: httpx.Response, what: str) -> ProviderError:
        """Map a non-2xx response to a typed error (subclasses refine, e.g. plan limits)."""
        detail = f"{error_detail(resp)} ({what})"
        code = resp.status_code
        if code in (401, 403):
            return self._fail(AuthError, detail, code)
        if code in (404, 410):
            return self._fail(NotCovered, detail, code)
        if code == 429:
            return self._fail(RateLimited, detail, code)
        if code >= 500:
            return self._fail(ProviderUnavailable, detail, code)
        return self._fail(BadRequest, detail, code)

    def get_json(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        use_cache: bool = True,
        auth: httpx.Auth | tuple[str, str] | None = None,
        on_error: Callable[[httpx.Response, str], ProviderError | None] | None = None,
    ) -> Any:
        """GET ``base_url + path`` and return its JSON, within the total time budget."""
        url = self.base_url + path
        what = self.redact(f"GET {path}" + (f"?{httpx.QueryParams(params)}" if params else ""))
        key = f"{self.provider} {url} {sorted((params or {}).items())}"
        if use_cache and self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        deadline = self._clock() + self.timeout_s
        last: ProviderError = self._fail(ProviderUnavailable, f"no attempt made ({what})", None)
        for attempt in range(self.retries + 1):
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            wait = self.backoff_s * (2**attempt)
            try:
                resp = self._client.get(
                    url, params=params, headers=headers, auth=auth, timeout=httpx.Timeout(remaining)
                )
            except httpx.TimeoutException:
                last = self._fail(
                    ProviderUnavailable, f"timed out after {self.timeout_s:g}s ({what})", None
                )
            except httpx.HTTPError as exc:
                last = self._fail(
                    ProviderUnavailable, f"connection failed: {type(exc).__name__} ({what})", None
                )
            else:
                if resp.is_success:
                    try:
                        data = resp.json()
                    except ValueError:
                        raise self._fail(
                            ProviderUnavailable, f"answer is not JSON ({what})", resp.status_code
                        ) from None
                    if use_cache and self.cache is not None:
                        self.cache.put(key, data)
                    return data
                err = (on_error(resp, what) if on_error else None) or self.classify(resp, what)
                if not isinstance(err, ProviderUnavailable):
                    raise err  # 4xx: retrying the same request will not help
                last = err
                if resp.status_code == 429:
                    after = parse_retry_after(resp.headers.get("Retry-After"))
                    wait = after if after is not None else wait
            log.info("%s: attempt %d failed: %s", self.provider, attempt + 1, last)
            if attempt == self.retries:
                break
            if self._clock() + wait >= deadline:
                last = type(last)(
                    self.provider,
                    f"{last.detail}; next retry in {wait:g}s "
                    f"exceeds the {self.timeout_s:g}s budget",
                    last.status,
                )
                break
            self._sleep(wait)
        raise last
