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
