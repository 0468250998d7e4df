"""The job's DataFrame transformations on a local SparkSession (no Kafka, no MongoDB)."""

from __future__ import annotations

import json
from typing import Any

import pytest

pyspark = pytest.importorskip("pyspark")

SEED = {
    "timestamp": "2025-10-14T14:25:23Z", "run_id": "run_001", "user_id": "alice",
    "model_name": "resnet18", "cpu_utilization_pct": 73.4, "gpu_power_w": 142.3,
    "gpu_mem_used_mb": 2104, "ram_used_mb": 8650, "net_sent_mb": 1.4, "net_recv_mb": 0.8,
    "region_iso": "DE", "grid_carbon_intensity_g_per_kwh": 401, "interval_s": 1,
}  # fmt: skip


def kafka_rows(spark: Any, values: list[Any]) -> Any:
    rows = [("t", 0, i, v if isinstance(v, bytes) else json.dumps(v).encode())
            for i, v in enumerate(values)]  # fmt: skip
    return spark.createDataFrame(rows, "topic string, partition int, offset long, value binary")


def test_each_kind_of_bad_input_gets_its_reason(spark: Any) -> None:
    from spark_jobs import transforms as T

    cases: list[tuple[Any, str | None]] = [
        (SEED, None),
        (b"not json", "not_json"),
        (b"[1, 2]", "not_json"),
        ({**SEED, "cpu_utilization_pct": "high"}, "wrong_type:cpu_utilization_pct"),
        ({k: v for k, v in SEED.items() if k != "user_id"}, "missing_field:user_id"),
        ({k: v for k, v in SEED.items() if k != "region_iso"}, "missing_field:region"),
        ({**SEED, "gpu_energy_j": -1.0}, "negative_value:gpu_energy_j"),
        ({**SEED, "cpu_utilization_pct": 140.0}, "out_of_range:cpu_utilization_pct"),
        ({**SEED, "interval_s": 0}, "out_of_range:interval_s"),
        ({**SEED, "timestamp": "1999-12-31T23:59:59Z"}, "absurd_timestamp"),
        ({**SEED, "timestamp": "3000-01-01T00:00:00Z"}, "absurd_timestamp"),
        ({**SEED, "timestamp": "yesterday"}, "bad_timestamp"),
        ({**SEED, "gpu_method": "guessed"}, "bad_value:gpu_method"),
        ({**SEED, "timestamp": "2025-10-14T16:25:23.500+02:00"}, None),
        ({**SEED, "timestamp": "2025-10-14T14:00:00Z"}, "late"),
        # rules read from the contract (maxLength, const, minLength, nested items, finiteness)
        ({**SEED, "run_id": "r" * 201}, "too_long:run_id"),
        ({**SEED, "run_id": "r" * 200}, None),
        ({**SEED, "model_name": ""}, "empty_field:model_name"),
        ({**SEED, "region_iso": ""}, "empty_field:region_iso"),
        ({**SEED, "schema_version": 2}, "bad_value:schema_version"),
        ({**SEED, "schema_version": "1"}, "wrong_type:schema_version"),
        ({**SEED, "schema_version": 1}, None),
        ({**SEED, "gpu_energy_j": float("nan")}, "not_finite:gpu_energy_j"),
        ({**SEED, "interval_s": float("inf")}, "not_finite:interval_s"),
        ({**SEED, "cpu_power_w": float("-inf")}, "not_finite:cpu_power_w"),
        ({**SEED, "gpus": [{"power_w": 1.0}, {"power_w": -1.0}]}, "negative_value:gpus/power_w"),
        ({**SEED, "gpus": [{"energy_j": float("nan")}]}, "not_finite:gpus/energy_j"),
        ({**SEED, "gpus": [{"method": "measured"}, {}]}, None),
        ({**SEED, "gpus": [{"method": "guessed"}]}, "bad_value:gpus/method"),
        ({**SEED, "net_sent_mb": 1e13}, "out_of_range:net_sent_mb"),  # would overflow a cast
    ]
    late_before = {"unknown": 1760451000}  # 2025-10-14T14:10:00Z, for the host-less seed
    df = T.with_reason(T.parse(kafka_rows(spark, [v for v, _ in cases])), late_before)
    got = {r["src_offset"]: r["reason"] for r in df.select("src_offset", "reason").collect()}
    assert [got[i] for i in range(len(cases))] == [r for _, r in cases]


def test_seed_event_energy_and_provenance(spark: Any) -> None:
    from spark_jobs import transforms as T

    parsed = T.with_reason(T.parse(kafka_rows(spark, [SEED])))
    slots = spark.createDataFrame(
        [], "zone string, slot_s long, seg_start_s long, seg_end_s long, ref_g_per_kwh double, "
        "ref_provider string, ref_kind string")  # fmt: skip
    fallback = {"DE": (379.0, "x"), "WORLD": (436.0, "y")}
    row = T.with_intensity(T.normalise(parsed), slots, fallback, 436.0).collect()[0]
    assert row["gpu_energy_j"] == pytest.approx(142.3)  # power x 1 s, no energy given
    assert row["energy_kwh"] == pytest.approx(142.3 / 3.6e6)
    assert row["gpu_method"] == "unknown"  # the seed says nothing: never claimed as measured
    assert (row["intensity_provider"], row["intensity_kind"]) == ("host-reported", "reported")
    assert row["co2_g"] == pytest.approx(142.3 / 3.6e6 * 401)
    assert row["net_sent_bytes"] == 1_400_000 and row["zone"] == "DE"


def test_intensity_is_exact_at_a_change_inside_a_slot(spark: Any) -> None:
    from spark_jobs import transforms as T
    from spark_jobs.reference import RefRecord, slot_rows, to_segments

    t0 = 1760451600  # 14:20:00Z
    recs = [RefRecord("DE", t0, t0 + 130, 100.0, "trace", "actual", 1),
            RefRecord("DE", t0 + 130, t0 + 3600, 500.0, "trace", "forecast", 2)]  # fmt: skip
    slots = spark.createDataFrame(
        slot_rows(to_segments(recs)),
        "zone string, slot_s long, seg_start_s long, seg_end_s long, ref_g_per_kwh double, "
        "ref_provider string, ref_kind string")  # fmt: skip
    fallback = {"WORLD": (436.0, "y")}
    from datetime import datetime, timezone

    def ev(t: int) -> dict[str, Any]:
        iso = datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")
        e = {**SEED, "timestamp": iso, "region": "DE", "cpu_energy_j": 3600.0}
        e.pop("grid_carbon_intensity_g_per_kwh")  # no host value: the WORLD fallback applies
        return e

    events = [ev(t0 + 129), ev(t0 + 130), ev(t0 + 7200)]
    checked = T.with_reason(T.parse(kafka_rows(spark, events)))
    df = T.with_intensity(T.normalise(checked), slots, fallback, 436.0)
    got = sorted((r["ts_s"], r["intensity_g_per_kwh"], r["intensity_kind"]) for r in df.collect())
    assert got == [(t0 + 129, 100.0, "actual"), (t0 + 130, 500.0, "forecast"),
                   (t0 + 7200, 436.0, "fallback")]  # fmt: skip


def test_event_time_fast_path_agrees_with_the_general_parser(spark: Any) -> None:
    """``...Z`` skips Spark's per-row zone lookup; every form must land on the same instant."""
    from datetime import datetime, timezone

    from pyspark.sql import functions as F

    from spark_jobs import transforms as T

    same_instant = [
        "2025-10-14T14:25:23Z",
        "2025-10-14T14:25:23+00:00",
        "2025-10-14T16:25:23+02:00",
        "2025-10-14T09:25:23-05:00",
        "2025-10-14 14:25:23Z",
    ]
    df = spark.createDataFrame([(t,) for t in [*same_instant, "2025-10-14T14:25:23.250Z", "nope"]],
                               "t string")  # fmt: skip
    got = [
        r["s"]
        for r in df.select(F.unix_timestamp(T.event_time(F.col("t"))).alias("s")).collect()
    ]
    expected_s = int(datetime(2025, 10, 14, 14, 25, 23, tzinfo=timezone.utc).timestamp())
    assert got[: len(same_instant)] == [expected_s] * len(same_instant)
    assert got[-2] == expected_s  # fractional seconds, same second
    assert got[-1] is None  # unparseable: null, reported as bad_timestamp by the rules


def test_time_rules_use_the_broker_clock_and_each_hosts_own_progress(spark: Any) -> None:
    """A future-dated event is judged against the time the broker appended it, and lateness
    against its own host's progress: host b's old event is late, host a's is not."""
    from datetime import datetime

    from spark_jobs import transforms as T

    broker = datetime(2025, 10, 14, 14, 30, 0)  # the record's append time (UTC session)
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({**SEED, "host": "a", "timestamp": "2025-10-14T14:34:00Z"}, None),  # 4 min ahead: ok
        ({**SEED, "host": "a", "timestamp": "2025-10-14T14:36:00Z"}, "future_timestamp"),
        ({**SEED, "host": "a", "timestamp": "2025-10-15T13:00:00Z"}, "future_timestamp"),
        ({**SEED, "host": "a", "timestamp": "2025-10-14T12:00:00Z"}, None),  # a: no progress
        ({**SEED, "host": "b", "timestamp": "2025-10-14T12:00:00Z"}, "late"),
        ({**SEED, "host": "b", "timestamp": "2025-10-14T14:00:00Z"}, None),
    ]
    rows = [("t", 0, i, broker, json.dumps(v).encode()) for i, (v, _) in enumerate(cases)]
    raw = spark.createDataFrame(
        rows, "topic string, partition int, offset long, timestamp timestamp, value binary"
    )
    late_before = {"b": 1760450400}  # 2025-10-14T14:00:00Z: b's newest minus its lateness
    got = {r["src_offset"]: r["reason"]
           for r in T.with_reason(T.parse(raw), late_before).collect()}  # fmt: skip
    assert [got[i] for i in range(len(cases))] == [r for _, r in cases]


def test_every_declared_aggregate_is_computed_from_the_normalised_events(spark: Any) -> None:
    """An aggregate may only read columns ``normalise``/``with_intensity`` produce: a missing
    one fails here, not in the running job."""
    from carbonpipe.core.aggregates import AGGREGATES
    from spark_jobs import transforms as T

    fallback = {"DE": (400.0, "test")}
    slots = spark.createDataFrame([], "zone string, slot_s long, seg_start_s long, "
                                      "seg_end_s long, ref_g_per_kwh double, ref_provider string, "
                                      "ref_kind string")  # fmt: skip
    valid = T.check(T.parse(kafka_rows(spark, [{**SEED, "seq": 3}]))).where("reason IS NULL")
    enriched = T.with_intensity(T.normalise(valid), slots, fallback, 475.0)
    (row,) = T.windows(enriched, 60).collect()
    assert {a.name for a in AGGREGATES} <= set(row.asDict())
    assert row["n_seq"] == 1 and row["seq_sum"] == 3 and row["seq_xor"] == 3


def test_gpu_hours_count_the_gpus_each_event_reports_over_its_interval(spark: Any) -> None:
    """``gpu_hours``: interval_s x the event's ``gpu_count`` (else its ``gpus`` list, else
    none), summed over the window's events, / 3600."""
    from spark_jobs import transforms as T

    fallback = {"DE": (400.0, "test")}
    slots = spark.createDataFrame([], "zone string, slot_s long, seg_start_s long, "
                                      "seg_end_s long, ref_g_per_kwh double, ref_provider string, "
                                      "ref_kind string")  # fmt: skip
    two = {**SEED, "timestamp": "2025-10-14T14:25:10Z", "interval_s": 10, "gpu_count": 2}
    listed = {**SEED, "timestamp": "2025-10-14T14:25:40Z", "interval_s": 30,
              "gpus": [{"index": i} for i in range(4)]}  # fmt: skip
    idle = {**SEED, "timestamp": "2025-10-14T14:25:50Z", "interval_s": 5, "gpu_count": 0}
    bare = {**SEED, "timestamp": "2025-10-14T14:25:55Z", "interval_s": 5}  # says nothing
    events = [{**e, "seq": i} for i, e in enumerate((two, listed, idle, bare))]
    valid = T.check(T.parse(kafka_rows(spark, events))).where("reason IS NULL")
    (row,) = T.windows(T.with_intensity(T.normalise(valid), slots, fallback, 475.0), 60).collect()
    assert row["n_events"] == 4
    assert row["gpu_hours"] == pytest.approx((10 * 2 + 30 * 4) / 3600)


def test_with_host_topics_an_event_must_name_its_topics_host(spark: Any) -> None:
    """A host topic proves who wrote it (ACL); an event claiming another host is rejected."""
    from spark_jobs import transforms as T

    prefix = "training.metrics.host."
    cases = [  # (topic, host field, reason)
        (f"{prefix}gpu-01", "gpu-01", None),
        (f"{prefix}gpu-01", "gpu-02", "host_mismatch"),
        (f"{prefix}gpu-01", None, "host_mismatch"),  # no host: it cannot be checked
        (f"{prefix}gpu-01.lab", "gpu-01", "host_mismatch"),  # a prefix is not the name
        ("training.metrics", "gpu-01", "host_mismatch"),  # not a host topic at all
    ]
    rows = []
    for i, (topic, host, _) in enumerate(cases):
        event = {**SEED, **({"host": host} if host else {})}
        rows.append((topic, 0, i, json.dumps(event).encode()))
    raw = spark.createDataFrame(rows, "topic string, partition int, offset long, value binary")
    got = {r["src_offset"]: r["reason"]
           for r in T.with_reason(T.parse(raw), host_prefix=prefix).collect()}  # fmt: skip
    assert got == {i: reason for i, (_, _, reason) in enumerate(cases)}
    # without host topics (the default) the topic says nothing about the host
    plain = T.with_reason(T.parse(raw)).where("reason IS NOT NULL").count()
    assert plain == 0


def test_the_job_clock_moves_by_the_hour() -> None:
    from spark_jobs.transforms import CLOCK_STEP_S, job_clock_s

    hour = 1_764_680_400  # 2025-12-02T13:00:00Z
    assert job_clock_s(hour) == hour
    assert job_clock_s(hour + 1) == job_clock_s(hour + CLOCK_STEP_S - 1) == hour + CLOCK_STEP_S
    assert job_clock_s(hour + 0.5) == hour + CLOCK_STEP_S  # never behind the real clock


def test_validation_is_compiled_once_not_per_batch(spark: Any) -> None:
    """A batch-specific literal in the rules (the clock once was) made Spark compile the whole
    validation stage again for every micro-batch; two batches of one hour share the code, also
    when the hosts' progress (a map literal, ``lookup_map``) differs between them."""
    from pyspark.sql import functions as F

    from spark_jobs import transforms as T

    compiled = spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()

    def batch(seq: int) -> int:
        before = compiled.getCount()
        df = kafka_rows(spark, [{**SEED, "seq": seq}, b"not json"])
        # other hosts, other times, more of them
        progress = {"h": 1.0 + seq, **{f"host-{i}": 2.0 * i for i in range(seq + 1)}}
        T.check(T.parse(df), progress).select("reason", F.col("e.seq")).collect()
        return int(compiled.getCount() - before)

    batch(0)  # the first compiles
    assert batch(1) == 0
