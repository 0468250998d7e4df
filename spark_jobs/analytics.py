"""Ad-hoc analytics over the cold store: ``events`` (one row per valid event) and ``windows``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carbonpipe.core.config import ConfigError, Settings
from spark_jobs.session import build_session
from spark_jobs.stream import events_path, uri_exists, windows_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Window partials are per-batch deltas: a window's total is their sum.
WINDOWS_VIEW = """
SELECT run_id, user_id, model_name, host, zone, timestamp_seconds(window_start_s) AS window_start,
       SUM(energy_kwh) AS energy_kwh, SUM(co2_g) AS co2_g, SUM(n_events) AS n_events,
       SUM(measured_kwh) AS measured_kwh, SUM(estimated_kwh) AS estimated_kwh,
       SUM(fallback_kwh) AS fallback_kwh
FROM window_partials GROUP BY run_id, user_id, model_name, host, zone, window_start_s
"""


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
    spark.sql(WINDOWS_VIEW).createOrReplaceTempView("windows")
    return spark
