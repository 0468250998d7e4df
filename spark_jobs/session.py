"""SparkSession for the job, the benchmark and ad-hoc SQL: local jars, UTC, small shuffles."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from carbonpipe.core.config import ConfigError, Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def connector_jars(settings: Settings) -> list[str]:
    jars_dir = Path(settings.spark_jars_dir)
    jars = sorted(str(p) for p in jars_dir.glob("*.jar"))
    if not any("spark-sql-kafka" in j for j in jars):
        raise ConfigError(
            f"CARBONPIPE_SPARK_JARS_DIR: no spark-sql-kafka connector jar in {jars_dir}; "
            "run `make setup` (resolves them with Maven from infra/spark/pom.xml)"
        )
    return jars


def build_session(settings: Settings, app_name: str, kafka: bool = True) -> SparkSession:
    from pyspark.sql import SparkSession

    # Python workers (used only off the hot path) must be this interpreter, not PATH's python3.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # The validation CASE chain has many aliased sub-expressions; inferring constraints
        # from them before the intensity join blows the plan up (driver OOM while planning).
        .config("spark.sql.constraintPropagation.enabled", "false")
        # from_json builds UnsafeRows directly (SPARK-48873): ~10 % less CPU per event here.
        .config("spark.sql.json.useUnsafeRow", "true")
        # Write partitioned Parquet without sorting the batch by partition first.
        .config("spark.sql.maxConcurrentOutputFileWriters", "8")
        .config("spark.driver.memory", settings.spark_driver_memory)
        # A job that runs for months: the driver's status store (kept without the UI too)
        # holds this many finished jobs, stages, tasks and SQL executions, not Spark's
        # defaults (1,000 / 1,000 / 100,000 / 1,000, several hundred MB of heap before they
        # stop growing: a micro-batch runs ~6 jobs and ~15 tasks).
        .config("spark.ui.retainedJobs", "50")
        .config("spark.ui.retainedStages", "50")
        .config("spark.ui.retainedTasks", "2000")
        .config("spark.sql.ui.retainedExecutions", "20")
        .config("spark.ui.retainedDeadExecutors", "10")
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
    )
    if settings.spark_master.startswith("local"):
        # Driver RPC and block manager listen on the host's address by default (every
        # interface another machine can reach); a local job needs loopback only.
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1")
    if kafka:
        builder = builder.config("spark.jars", ",".join(connector_jars(settings)))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
