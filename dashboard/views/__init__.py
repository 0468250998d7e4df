"""The dashboard's pages: each module draws one page with ``render(settings, viewer)``.

Pages read only the rollups (``days``, ``totals``) and the rows on screen (``runs`` by page,
one run's ``series``), through ``carbonpipe.query``; their figures come from the pure
``dashboard.*_data`` modules; every user-supplied string is shown as text (``dashboard.safe``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from carbonpipe.core.config import Settings


def own_scope(settings: Settings) -> bool:
    return settings.dashboard_scope == "own"


def run_link(run_id: str) -> str:
    """The run page's deep link (a relative URL; the id URL-encoded, never markup)."""
    from urllib.parse import quote

    return f"run?run={quote(run_id, safe='')}"


def utc(t: Any) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC") if isinstance(t, datetime) else "-"
