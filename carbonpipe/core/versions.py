"""The hot store's read contract: documents are versioned per ``key`` (one per micro-batch,
``batch_id``), and readers show the newest version of each key. The job writes them
(``spark_jobs.hot_store``); the CLI, the dashboard and the tests read them through this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["newest"]


def newest(docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The newest version per key: what readers show."""
    best: dict[str, dict[str, Any]] = {}
    for d in docs:
        cur = best.get(d["key"])
        if cur is None or d["batch_id"] > cur["batch_id"]:
            best[d["key"]] = dict(d)
    return list(best.values())
