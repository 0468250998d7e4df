"""What the rollups are keyed by and what they sum (pure), declared once.

The streaming job's rollups (``spark_jobs.rollups``: ``days``, ``totals``) and the readers
that rebuild the same sums from run documents (the filtered Overview) must agree on which
dimension values a window or run counts towards, and which figures are summed; both import
them from here.
"""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
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


def calendar_days(first: date, last: date) -> list[str]:
    """Every UTC day from ``first`` to ``last`` (``YYYY-MM-DD``), oldest first."""
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def month_split(days: Sequence[str]) -> tuple[list[str], list[str]]:
    """A range's days (every UTC day of it, ``YYYY-MM-DD``, oldest first) as what to read to
    sum it: the months all of whose days are in it (``YYYY-MM``, from the ``months``
    buckets) and the other days (from ``days``). A year is 12 months and its edge days."""
    count = Counter(d[:7] for d in days)
    whole = [m for m, n in count.items()
             if n == calendar.monthrange(int(m[:4]), int(m[5:7]))[1]]  # fmt: skip
    inside = set(whole)
    return whole, [d for d in days if d[:7] not in inside]
