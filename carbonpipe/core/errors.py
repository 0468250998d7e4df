"""The error root: every error a user can fix is a ``CarbonpipeError``, caught once in ``main``.

A subclass sets ``exit_code``; the message says what went wrong and what to do, and never
carries a secret (``config.load_settings`` redacts them).
"""

from __future__ import annotations


class CarbonpipeError(Exception):
    """Something the user can fix; ``carbonpipe`` prints the message and exits ``exit_code``."""

    exit_code: int = 1


class ConfigError(CarbonpipeError, ValueError):
    """A configuration value or flag is wrong; the message names the key and the fix."""

    exit_code = 2


class UserError(CarbonpipeError):
    """A request that cannot be carried out as asked (no such process, empty table, ...)."""

    exit_code = 2
