"""carbonpipe: energy and CO2 of every ML training run, measured where a counter exists.

The public Python API is small on purpose: ``track`` (context manager / decorator that runs
the collector beside a block of code) and ``get_settings``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from carbonpipe.core.version import VERSION

__all__ = ["Settings", "__version__", "get_settings", "track"]
__version__ = VERSION

if TYPE_CHECKING:  # pragma: no cover
    from carbonpipe.core.config import Settings as Settings
    from carbonpipe.core.config import get_settings as get_settings
    from collector.track import track as track


def __getattr__(name: str) -> Any:
    # Lazy so that ``import carbonpipe`` stays cheap (no psutil / kafka import) for the CLI, and
    # so that ``carbonpipe.cli`` runs before pydantic builds ``Settings`` (see cli.main).
    if name == "track":
        from collector.track import track

        return track
    if name in ("Settings", "get_settings"):
        from carbonpipe.core import config

        return getattr(config, name)
    raise AttributeError(name)
