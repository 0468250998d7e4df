"""Where the job keeps its files, on any Hadoop file system (local folder, hdfs://, s3a://).

The cold store (per-event archive and window partials) and the checkpoint are URIs from the
settings; Spark's own Hadoop ``FileSystem`` answers for every scheme, so nothing here assumes
a local disk.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession

from carbonpipe.core.config import Settings


def events_path(settings: Settings) -> str:
    return settings.cold_store_uri.rstrip("/") + "/events"


def windows_path(settings: Settings) -> str:
    return settings.cold_store_uri.rstrip("/") + "/windows"


def checkpoint_path(settings: Settings) -> str:
    return settings.checkpoint_uri.rstrip("/") + "/stream"


def delete_uri(spark: SparkSession, uri: str) -> None:
    """Deletes a folder on any Hadoop file system (local, hdfs://, s3a://)."""
    jvm: Any = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    path.getFileSystem(spark._jsc.hadoopConfiguration()).delete(path, True)


def uri_exists(spark: SparkSession, uri: str) -> bool:
    jvm: Any = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return bool(path.getFileSystem(spark._jsc.hadoopConfiguration()).exists(path))
