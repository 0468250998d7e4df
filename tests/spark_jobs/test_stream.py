"""The streaming job's cold-store writes (``spark_jobs.stream``), on a local Spark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyspark")


def test_a_batch_partition_is_replaced_by_its_replay_and_compiled_once(
    spark: Any, tmp_path: Path
) -> None:
    """Each batch lands in ``date=…/batch_id=N/``; a replay of batch N replaces only N's files;
    and batches after the first reuse the generated code (an integer batch-id literal once made
    Spark compile every write anew, every micro-batch)."""
    from pyspark.sql import functions as F

    from spark_jobs.stream import write_batch_partition

    compiled = spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()
    path = str(tmp_path / "events")

    def write(batch_id: int, rows: int) -> int:
        before = compiled.getCount()
        df = spark.createDataFrame([(86_400 + i,) for i in range(rows)], "s long").select(
            F.timestamp_seconds("s").alias("ts"))  # fmt: skip
        write_batch_partition(df, F.to_date("ts"), batch_id, path)
        return int(compiled.getCount() - before)

    write(0, 5)  # the first compiles
    assert write(1, 3) == 0
    assert write(2, 4) == 0
    write(1, 2)  # batch 1 replayed with other rows: its partition only is replaced
    back = spark.read.parquet(path)
    assert dict(back.groupBy("batch_id").count().collect()) == {0: 5, 1: 2, 2: 4}
    assert back.schema["batch_id"].dataType.simpleString() == "int"
    assert {r["date"].isoformat() for r in back.select("date").distinct().collect()} == {
        "1970-01-02"}


def test_the_log_is_split_by_records_not_into_a_task_per_core_for_every_batch() -> None:
    """A micro-batch of a few thousand events read as one task per log partition: splitting
    every batch into partitions x cores cost ~1.2 s of a 4.8 s batch at 1,000 events/s
    (bench/bench_latency.py); a big batch is still spread, in pieces of a bounded size."""
    from carbonpipe.core.config import Settings
    from spark_jobs.stream import source_options

    default = source_options(None, Settings())  # type: ignore[arg-type]
    assert default["maxRecordsPerPartition"] == "200000" and "minPartitions" not in default
    forced = source_options(None, Settings(kafka_min_partitions=6))  # type: ignore[arg-type]
    assert forced["minPartitions"] == "6" and "maxRecordsPerPartition" not in forced
