"""The provider chain: ask providers in the configured order, return the first answer.

Failures are typed (``errors.py``) and collected, so the caller sees which provider answered
(``point.provider``) and, when none did, why each one failed. Build it with
:func:`build_chain` from settings; the names are those of ``config.PROVIDER_NAMES``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import httpx
from pydantic import SecretStr

from carbonpipe.core.config import Settings
from carbonpipe.intensity.base import Clock, IntensityProvider, utcnow
from carbonpipe.intensity.electricitymaps import ElectricityMapsProvider
from carbonpipe.intensity.errors import IntensityError, NoProviderAnswered
from carbonpipe.intensity.http import HttpJsonClient, TTLCache
from carbonpipe.intensity.model import IntensityPoint
from carbonpipe.intensity.offline import TraceProvider
from carbonpipe.intensity.static import StaticProvider
from carbonpipe.intensity.uk import UKProvider
from carbonpipe.intensity.watttime import WattTimeProvider

log = logging.getLogger(__name__)
T = TypeVar("T")


class ProviderChain:
    """An :class:`IntensityProvider` made of others, tried in order."""

    name = "chain"

    def __init__(self, providers: Sequence[IntensityProvider]) -> None:
        self.providers = list(providers)

    def _first(
        self,
        zone: str,
        ask: Callable[[IntensityProvider], T],
        empty: Callable[[T], bool] = lambda _: False,
    ) -> T:
        errors: list[tuple[str, Exception]] = []
        for p in self.providers:
            try:
                result = ask(p)
            except (IntensityError, ValueError) as exc:  # typed failures: fall through
                log.info("intensity provider %s failed for %s: %s", p.name, zone, exc)
                errors.append((p.name, exc))
                continue
            if empty(result):
                errors.append((p.name, IntensityError("empty answer")))
                continue
            return result
        raise NoProviderAnswered(zone, errors)

    def current(self, zone: str) -> IntensityPoint:
        return self._first(zone, lambda p: p.current(zone))

    def history(self, zone: str, start: datetime, end: datetime) -> list[IntensityPoint]:
        return self._first(zone, lambda p: p.history(zone, start, end), lambda r: not r)

    def forecast(self, zone: str, horizon: timedelta) -> list[IntensityPoint]:
        return self._first(zone, lambda p: p.forecast(zone, horizon), lambda r: not r)


def build_provider(
    name: str,
    settings: Settings,
    clock: Clock = utcnow,
    cache: TTLCache | None = None,
    transport: httpx.BaseTransport | None = None,
) -> IntensityProvider:
    """One provider by name, configured from settings (base URLs, keys, timeouts, cache)."""
    cache = (
        cache if cache is not None else TTLCache(settings.cache_ttl_s, settings.intensity_cache_dir)
    )

    def http(provider: str, base_url: str) -> HttpJsonClient:
        return HttpJsonClient(
            provider,
            base_url,
            timeout_s=settings.http_timeout_s,
            retries=settings.http_retries,
            backoff_s=settings.http_backoff_s,
            cache=cache,
            transport=transport,
        )

    if name == "uk":
        return UKProvider(http("uk", settings.uk_base_url), clock)
    if name == "electricitymaps":
        return ElectricityMapsProvider(
            http(name, settings.electricitymaps_base_url),
            _secret(settings.electricitymaps_token),
            clock,
        )
    if name == "watttime":
        return WattTimeProvider(
            http(name, settings.watttime_base_url),
            settings.watttime_username,
            _secret(settings.watttime_password),
            clock,
        )
    if name == "trace":
        return TraceProvider(trace_paths=settings.trace_paths, clock=clock)
    if name == "static":
        return StaticProvider(settings.zone_averages_path, clock)
    raise ValueError(f"unknown provider {name!r}")


def build_chain(
    settings: Settings, names: Sequence[str] | None = None, clock: Clock = utcnow
) -> ProviderChain:
    """The chain in ``settings.provider_chain`` order (or ``names``), sharing one cache."""
    cache = TTLCache(settings.cache_ttl_s, settings.intensity_cache_dir)
    chosen = list(names) if names is not None else settings.provider_chain
    return ProviderChain([build_provider(n, settings, clock, cache) for n in chosen])


def _secret(value: SecretStr | None) -> str | None:
    """The plain secret, handed only to the provider that sends it to its own host."""
    return value.get_secret_value() if value is not None else None
