"""Ad-hoc analytics over the cold store: ``events`` (one row per valid event) and ``windows``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carbonpipe.core.aggregates import AGGREGATES
from carbonpipe.core.config import ConfigError, Settings
from spark_jobs.session import build_session
from spark_jobs.storage import events_path, uri_exists, windows_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

WINDOW_KEYS_SQL = "run_id, user_id, model_name, host, zone, window_start_s"


def windows_view_sql(columns: set[str] | None = None) -> str:
    """The ``windows`` view: window partials (per-batch deltas) merged per window as each
    aggregate declares (``carbonpipe.core.aggregates``). ``columns``: those the partials on
    disk have (older partials lack newer aggregates: those are left out, not failed on)."""
    how = {"sum": "SUM({})", "max": "MAX({})", "min": "MIN({})", "xor": "BIT_XOR({})",
           "last": "MAX_BY({}, batch_id)"}  # fmt: skip
    merged = ", ".join(
        f"{how[a.merge].format(a.name)} AS {a.name}"
        for a in AGGREGATES
        if columns is None or a.name in columns
    )
    return (
        f"SELECT run_id, user_id, model_name, host, zone, "
        f"timestamp_seconds(window_start_s) AS window_start, {merged} "
        f"FROM window_partials GROUP BY {WINDOW_KEYS_SQL}"
    )


def cold_session(settings: Settings) -> SparkSession:
    import logging

    spark = build_session(settings, "carbonpipe-sql", kafka=False)
    # A mistyped query is answered with the message alone (the CLI prints it), not with the
    # JVM stack trace PySpark logs for every analysis error.
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    found = []
    for name, path in (
        ("events", events_path(settings)),  # only where the per-event archive is on
        ("window_partials", windows_path(settings)),
    ):
        if not uri_exists(spark, path):
            continue
        try:
            # mergeSchema: partials written by older versions lack some columns
            spark.read.option("mergeSchema", "true").parquet(path).createOrReplaceTempView(name)
            found.append(name)
        except Exception as exc:
            if "UNABLE_TO_INFER_SCHEMA" not in str(exc):  # a folder without files yet
                raise
    if "window_partials" not in found:
        raise ConfigError(
            f"CARBONPIPE_COLD_STORE_URI: nothing under {settings.cold_store_uri} yet; start the "
            "stack (`make demo` or `carbonpipe stream`) and let it write"
        )
    view = windows_view_sql(set(spark.table("window_partials").columns))
    spark.sql(view).createOrReplaceTempView("windows")
    return spark
