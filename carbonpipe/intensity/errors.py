"""Typed provider errors: the chain falls through on them, the CLI prints them, never a crash.

Every error names the provider and (when there was one) the HTTP status, and its message has
secrets redacted before it is built, so it is safe to log.
"""

from __future__ import annotations

from carbonpipe.core.errors import CarbonpipeError


class IntensityError(CarbonpipeError):
    """Base of everything the intensity package raises on purpose (exit status 1)."""


class ProviderError(IntensityError):
    """A provider could not answer. ``status`` is the HTTP status, None without a response."""

    def __init__(self, provider: str, message: str, status: int | None = None) -> None:
        self.provider = provider
        self.status = status
        self.detail = message
        where = f"{provider}" + (f" HTTP {status}" if status is not None else "")
        super().__init__(f"{where}: {message}")


class ProviderUnavailable(ProviderError):  # noqa: N818 (a state, not an error verb: reads as 'raise NotCovered')
    """5xx, timeout, connection failure, rate limit beyond our time budget, unusable body."""


class RateLimited(ProviderUnavailable):
    """429 whose Retry-After does not fit in the remaining time budget (or retries ran out)."""


class CrossOriginRedirect(ProviderError):  # noqa: N818 (a state: reads as 'raise NotCovered')
    """The provider redirected to another scheme, host or port. Not followed: the request
    carries the token, which goes to the configured address only."""


class ImplausibleValue(ProviderUnavailable):
    """A value that cannot be a carbon intensity (NaN, negative, absurdly high)."""


class AuthError(ProviderError):
    """401/403: missing, wrong or expired credentials."""


class NotCovered(ProviderError):  # noqa: N818 (a state, not an error verb: reads as 'raise NotCovered')
    """404 or a zone/region this provider does not serve."""


class ZoneNotAllowed(NotCovered):
    """The zone exists but the account's plan does not include it (EM 'zoneKey', WT 'scope')."""


class BadRequest(ProviderError):  # noqa: N818 (a state, not an error verb: reads as 'raise NotCovered')
    """400 (and other 4xx): the request itself was wrong; retrying will not help."""


class UnknownZone(IntensityError, ValueError):  # noqa: N818 (a state, not an error verb: reads as 'raise NotCovered')
    """A zone or cloud region carbonpipe cannot map; the message lists the known ones."""

    exit_code = 2


class NoProviderAnswered(IntensityError):  # noqa: N818 (a state, not an error verb: reads as 'raise NotCovered')
    """Every provider of the chain failed; ``errors`` holds (provider, error) in order."""

    def __init__(self, zone: str, errors: list[tuple[str, Exception]]) -> None:
        self.zone = zone
        self.errors = errors
        lines = "; ".join(f"{name}: {exc}" for name, exc in errors) or "no providers configured"
        super().__init__(f"no provider answered for zone {zone}: {lines}")
