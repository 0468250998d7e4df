"""The hot store's read contract.

The job writes (``spark_jobs.hot_store``); the CLI, the dashboard and the tests read through
this. Readers use the read models only: ``runs`` (one current document per run), ``days``
(one bucket per UTC day: sums per dimension value), ``months`` (the same per UTC month),
``run_index`` (one per UTC hour: the runs
that started in it, for listing) and ``totals`` (one document per dimension value, all time);
see ``spark_jobs.rollups``; and ``series``, one document per run and UTC day with its windows
(the run's page; ``series_id``). Behind them the job keeps versioned documents (``windows``,
``run_versions``, ``stats``: one version per key and micro-batch, ``batch_id``), which
``newest`` folds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from carbonpipe.core.aggregates import shown_names

__all__ = ["DAYS", "MONTHS", "READ_MODELS", "RUNS", "RUN_INDEX", "RUN_VERSIONS", "SERIES",
           "TOTALS", "newest", "run_fields", "series_days", "series_id"]  # fmt: skip

RUNS, DAYS, MONTHS, TOTALS, SERIES = "runs", "days", "months", "totals", "series"
RUN_INDEX, RUN_VERSIONS = "run_index", "run_versions"
# Every collection readers read, all derived from the versions (a rebuild drops them all).
READ_MODELS = (RUNS, DAYS, MONTHS, TOTALS, SERIES, RUN_INDEX)
# What a run's ``series`` document keeps of each of its windows (its page's charts).
SERIES_FIELDS = ("window_start", "window_start_s", "window_s", "host", "zone", "energy_kwh",
                 "cpu_kwh", "gpu_kwh", "ram_kwh", "co2_g", "mean_power_w",
                 "mean_intensity_g_per_kwh", "n_events", "method", "first_epoch", "last_epoch",
                 "last_step")  # fmt: skip

RUN_IDENTITY = ("run_id", "user_id", "model_name", "start", "end", "duration_s")
RUN_PROVENANCE = ("hosts", "zones", "intensity_providers", "schedule_decision_id",
                  "duplicates", "dead_letters")  # fmt: skip


def series_id(run_id: str, window_start_s: float) -> str:
    """The ``series`` document holding a window: one per run and UTC day of the window's
    start (``run|YYYY-MM-DD``), so a batch rewrites only the days it touched and a run's cost
    per batch does not grow with its length (a month at 60 s windows is 43,200 windows)."""
    return f"{run_id}|{datetime.fromtimestamp(window_start_s, timezone.utc):%Y-%m-%d}"


def series_days(run_id: str, start: datetime, end: datetime) -> list[str]:
    """The ``series`` ids a run from ``start`` to ``end`` may have, oldest first (from the
    day before ``start``: a window may start before the run's first event)."""
    start, end = (d if d.tzinfo else d.replace(tzinfo=timezone.utc) for d in (start, end))
    first = (start - timedelta(days=1)).date()
    n = (end.date() - first).days + 1
    return [f"{run_id}|{first + timedelta(days=i):%Y-%m-%d}" for i in range(max(n, 1))]


def run_fields() -> tuple[str, ...]:
    """What a reader gets per run: identity, the shown aggregates (declared once in
    ``carbonpipe.core.aggregates``) and provenance (duplicates counted once; dead letters per
    reason). Tags and hardware facts are aggregates."""
    return (*RUN_IDENTITY, *shown_names(), *RUN_PROVENANCE)


def newest(docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The newest version per key: what readers show."""
    best: dict[str, dict[str, Any]] = {}
    for d in docs:
        cur = best.get(d["key"])
        if cur is None or d["batch_id"] > cur["batch_id"]:
            best[d["key"]] = dict(d)
    return list(best.values())
