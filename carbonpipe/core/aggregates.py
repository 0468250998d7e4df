"""The window aggregates, declared once.

Every figure the streaming job keeps per window is one ``Aggregate`` here: its name, the Spark
SQL that computes it over the enriched events of a micro-batch, how two partials of the same
window merge (``sum``/``max``/``min``/``last``), its unit, and whether users see it. From this
table come the job's aggregation (``spark_jobs.transforms.windows``), the hot store's merge of
windows and runs (``spark_jobs.hot_store``), the cold store's window view
(``spark_jobs.analytics``), the readers' fields (``carbonpipe.query``) and the dashboard's
columns. An aggregate added here alone reaches MongoDB, Parquet and ``carbonpipe runs --json``
(``tests/spark_jobs/test_aggregates_integration.py``); before, it had to be added in five places
and was silently dropped from MongoDB when one was missed.

Figures derived from the merged aggregates (means, the method label) are ``Derived`` entries:
they are recomputed after every merge, never merged themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from carbonpipe.core.units import DEVICES, J_PER_KWH

Merge = Literal["sum", "max", "min", "last", "xor"]


@dataclass(frozen=True)
class Aggregate:
    name: str
    spark_sql: str  # over the enriched event columns of one micro-batch
    merge: Merge
    unit: str
    shown: bool = True  # in ``carbonpipe runs --json`` and the run documents readers get
    label: str | None = None  # a column of the dashboard's runs table, when set
    doc: str = ""


@dataclass(frozen=True)
class Derived:
    """A figure computed from the merged aggregates of a window or run (``merge._derive``)."""

    name: str
    unit: str
    shown: bool = True
    label: str | None = None
    doc: str = ""


def _dev_kwh(dev: str) -> str:
    return f"coalesce({dev}_energy_j, 0D) / {J_PER_KWH!r}D"


def _by_method(method: str) -> str:
    return " + ".join(
        f"CASE WHEN {d}_method = '{method}' THEN {_dev_kwh(d)} ELSE 0D END" for d in DEVICES
    )


def _latest(col: str) -> str:
    """The value of the latest event that carries ``col`` (events before it have none)."""
    return f"max_by({col}, CASE WHEN {col} IS NOT NULL THEN ts_s END)"


def _kind_kwh(kind: str) -> str:
    return f"sum(CASE WHEN intensity_kind = '{kind}' THEN energy_kwh ELSE 0D END)"


AGGREGATES: tuple[Aggregate, ...] = (
    Aggregate("energy_kwh", "sum(energy_kwh)", "sum", "kWh", label="energy (kWh)",
              doc="CPU + GPU + RAM energy"),
    *(Aggregate(f"{d}_kwh", f"sum({_dev_kwh(d)})", "sum", "kWh", doc=f"{d.upper()} energy")
      for d in DEVICES),
    Aggregate("measured_kwh", f"sum({_by_method('measured')})", "sum", "kWh",
              doc="energy read from a hardware counter (RAPL, NVML)"),
    Aggregate("estimated_kwh", f"sum({_by_method('estimated')})", "sum", "kWh",
              doc="energy computed by a named model (TDP x utilisation, W per GB)"),
    Aggregate("co2_g", "sum(co2_g)", "sum", "gCO2e", label="CO₂e (g)"),
    # Counted: the GPUs the event reports (``gpu_count``, else the length of its ``gpus``
    # list), busy or idle: a GPU held by the run is spent on it even at 0 % utilisation. An
    # event archived before this aggregate existed has no count: none.
    Aggregate("gpu_hours", "sum(interval_s * coalesce(gpu_count, 0)) / 3600D", "sum", "GPU-h",
              label="GPU-hours",
              doc="sum over events of interval_s x the GPUs the event reports, / 3600"),
    Aggregate("fallback_kwh", _kind_kwh("fallback"), "sum", "kWh",
              label="kWh on fallback intensity",
              doc="energy charged a static average because no provider value was in force"),
    Aggregate("forecast_kwh", _kind_kwh("forecast"), "sum", "kWh", shown=False,
              doc="energy charged a forecast rather than an actual intensity"),
    Aggregate("fallback_co2_g", "sum(CASE WHEN intensity_kind = 'fallback' THEN co2_g ELSE 0D END)",
              "sum", "gCO2e", shown=False,
              doc="what fallback_kwh was charged: a late intensity replaces exactly this"),
    Aggregate("fallback_first_ts_s", "min(CASE WHEN intensity_kind = 'fallback' THEN ts_s END)",
              "min", "s since epoch", shown=False,
              doc="first event charged the fallback: a late segment must hold it to correct"),
    Aggregate("fallback_last_ts_s", "max(CASE WHEN intensity_kind = 'fallback' THEN ts_s END)",
              "max", "s since epoch", shown=False, doc="last event charged the fallback"),
    Aggregate("covered_s", "sum(interval_s)", "sum", "s", shown=False,
              doc="seconds of measurement (summed over hosts)"),
    Aggregate("n_events", "count(1)", "sum", "events"),
    Aggregate("first_ts_s", "min(ts_s)", "min", "s since epoch", shown=False),
    Aggregate("last_ts_s", "max(ts_s)", "max", "s since epoch", shown=False),
    Aggregate("min_seq", "min(seq)", "min", "seq", shown=False),
    Aggregate("max_seq", "max(seq)", "max", "seq", shown=False),
    # With min/max_seq: is a partial's seq set exactly min..max? (spark_jobs/dedupe.py)
    Aggregate("n_seq", "count(seq)", "sum", "events", shown=False,
              doc="events carrying a seq (older collectors send none)"),
    Aggregate("seq_sum", "sum(seq)", "sum", "seq", shown=False),
    Aggregate("seq_xor", "bit_xor(seq)", "xor", "seq", shown=False),
    Aggregate("sum_cpu_utilization_pct", "sum(cpu_utilization_pct)", "sum", "% x events",
              shown=False, doc="numerator of mean_cpu_utilization_pct"),
    Aggregate("max_gpu_mem_used_mb", "max(gpu_mem_used_mb)", "max", "MB", shown=False),
    Aggregate("max_ram_used_mb", "max(ram_used_mb)", "max", "MB", shown=False),
    # The training progress the framework callbacks report (collector/progress.py): the run
    # page splits a window's energy over the epochs it spans (dashboard.run_data.per_epoch).
    Aggregate("first_epoch", "min(epoch)", "min", "epoch", shown=False,
              doc="lowest epoch reported in the window (events without one: none)"),
    Aggregate("last_epoch", "max(epoch)", "max", "epoch",
              doc="highest epoch reported (for a run: the epochs reached)"),
    Aggregate("last_step", "max(step)", "max", "step", doc="highest step reported"),
    Aggregate("ended", "max(CASE WHEN event_type = 'end' THEN 1 ELSE 0 END)", "max", "flag",
              doc="1 once the collector sent the run's end event"),
    *(Aggregate(name, _latest(name), "last", unit, doc=doc) for name, unit, doc in (
        ("predicted_energy_kwh", "kWh", "the collector's prediction of the run's whole energy"),
        ("predicted_co2_g", "gCO2e", "the same x the intensity the collector charged"),
        ("predicted_epochs", "epochs", "the epochs the prediction is for"),
        ("predicted_kwh_per_epoch", "kWh/epoch", "the measured rate it used"),
        ("tags", "k=v", "the run's tags (collect --tag): rolled up per tag per day"),
        ("cpu_name", "name", "CPU of the host (the last host to report, for a multi-host run)"),
        ("cpu_count", "CPUs", "logical CPUs of that host"),
        ("ram_total_mb", "MB", "RAM of that host"),
        ("os", "name", "operating system of that host"),
    )),
)  # fmt: skip

DERIVED: tuple[Derived, ...] = (
    Derived("mean_intensity_g_per_kwh", "gCO2e/kWh", label="mean intensity (g/kWh)",
            doc="co2_g / energy_kwh"),
    Derived("mean_power_w", "W", shown=False, doc="energy over covered seconds"),
    Derived("mean_cpu_utilization_pct", "%", shown=False),
    Derived("method", "label", label="method", doc="measured, estimated, mixed or unknown"),
)  # fmt: skip


def by_merge(merge: Merge) -> tuple[str, ...]:
    """Names of the aggregates that merge by ``merge`` (read at call time, never copied)."""
    return tuple(a.name for a in AGGREGATES if a.merge == merge)


def shown_names() -> tuple[str, ...]:
    """What readers get of a run besides its identity and provenance, in declaration order."""
    return tuple(x.name for x in _entries() if x.shown)


def dashboard_labels() -> dict[str, str]:
    """Column name -> label of the dashboard's runs table (those with a label)."""
    return {x.name: x.label for x in _entries() if x.label}


def _entries() -> tuple[Aggregate | Derived, ...]:
    return (*AGGREGATES, *DERIVED)
