"""The hot store's read contract.

The job writes (``spark_jobs.hot_store``); the CLI, the dashboard and the tests read through
this. Readers use the read models only: ``runs`` (one current document per run), ``days``
(one bucket per UTC day: sums per dimension value), ``run_index`` (one per UTC hour: the runs
that started in it, for listing) and
``totals`` (one document per dimension value, all time); see ``spark_jobs.rollups``; and
``series``, one document per run with its windows (the run's page). Behind them the job keeps
versioned documents (``windows``, ``run_versions``, ``stats``: one version per key and
micro-batch, ``batch_id``), which ``newest`` folds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from carbonpipe.core.aggregates import shown_names

__all__ = ["DAYS", "RUNS", "RUN_INDEX", "RUN_VERSIONS", "SERIES", "TOTALS", "newest",
           "run_fields"]  # fmt: skip

RUNS, DAYS, TOTALS, SERIES = "runs", "days", "totals", "series"
RUN_INDEX, RUN_VERSIONS = "run_index", "run_versions"
# What a run's ``series`` document keeps of each of its windows (its page's charts).
SERIES_FIELDS = ("window_start", "window_start_s", "window_s", "host", "zone", "energy_kwh",
                 "cpu_kwh", "gpu_kwh", "ram_kwh", "co2_g", "mean_power_w",
                 "mean_intensity_g_per_kwh", "n_events", "method", "first_epoch", "last_epoch",
                 "last_step")  # fmt: skip

RUN_IDENTITY = ("run_id", "user_id", "model_name", "start", "end", "duration_s")
RUN_PROVENANCE = ("hosts", "zones", "intensity_providers", "schedule_decision_id",
                  "duplicates", "dead_letters")  # fmt: skip


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
