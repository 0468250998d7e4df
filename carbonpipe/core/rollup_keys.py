"""What the rollups are keyed by and what they sum (pure), declared once.

The streaming job's rollups (``spark_jobs.rollups``: ``days``, ``totals``) and the readers
that rebuild the same sums from run documents (the filtered Overview) must agree on which
dimension values a window or run counts towards, and which figures are summed; both import
them from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carbonpipe.core.aggregates import AGGREGATES

ALL = ("all", "all")
DIMENSIONS = ("user", "model", "zone", "host", "tag")
DimKey = tuple[str, str]


def rolled() -> tuple[str, ...]:
    """The figures a day or total sums: the summed aggregates readers see (plus ``runs``,
    which the rollups count themselves)."""
    return tuple(a.name for a in AGGREGATES if a.merge == "sum" and a.shown)


def dim_values(row: Mapping[str, Any]) -> list[DimKey]:
    """The dimension values a window (``zone``, ``host``) or run (``zones``, ``hosts``)
    counts towards, ``all`` first, each once."""
    out = [ALL, ("user", str(row.get("user_id"))), ("model", str(row.get("model_name")))]
    for dim, field in (("zone", "zone"), ("host", "host")):
        if row.get(field):
            out.append((dim, str(row[field])))
    for dim, values in (("zone", "zones"), ("host", "hosts")):  # a run lists them
        out.extend((dim, str(v)) for v in row.get(values) or [])
    out.extend(("tag", f"{k}={v}") for k, v in sorted((row.get("tags") or {}).items()))
    return list(dict.fromkeys(out))
