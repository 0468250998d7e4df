"""Ad-hoc analytics over the cold store: ``events`` (one row per valid event) and ``windows``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carbonpipe.config import ConfigError, Settings
from spark_jobs.session import build_session
from spark_jobs.stream import events_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

WINDOWS_VIEW = """
SELECT run_id, user_id, model_name, host, zone,
       timestamp_seconds(unix_timestamp(ts) - pmod(unix_timestamp(ts), {window_s}))
         AS window_start,
       SUM(energy_kwh) AS energy_kwh, SUM(co2_g) AS co2_g, COUNT(*) AS n_events
FROM events GROUP BY ALL
"""


def cold_session(settings: Settings) -> SparkSession:
    spark = build_session(settings, "carbonpipe-sql", kafka=False)
    path = events_path(settings)
    try:
        spark.read.parquet(path).createOrReplaceTempView("events")
    except Exception as exc:
        if "PATH_NOT_FOUND" in str(exc) or "UNABLE_TO_INFER_SCHEMA" in str(exc):
            raise ConfigError(
                f"CARBONPIPE_COLD_STORE_URI: no events under {path} yet; start the stack "
                "(`make demo` or `carbonpipe stream`) and let it write"
            ) from None
        raise
    spark.sql(WINDOWS_VIEW.format(window_s=settings.window_s)).createOrReplaceTempView("windows")
    return spark
