"""Pure DataFrame transformations of the streaming job (no I/O, built-in SQL functions only).

The same functions run on a streaming micro-batch, on a batch read of the log (replay) and in
the benchmark's bare-rate baseline, so what is measured is what runs.

Rules the hand-computed tests rely on:
- an event covers ``interval_s`` seconds ending at ``timestamp``; its energy is the sum of the
  CPU, GPU and RAM energies, each given in J or, where absent, ``power_w * interval_s``;
- the event belongs to the ``window_s`` tumbling window that contains its ``timestamp``;
- its intensity is the one in force for its zone at its ``timestamp`` (reference slots of
  segments, exact to the second), else the value the host reported, else the zone's static average,
  else the world average; the provenance travels with the figure.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from carbonpipe.contracts import METRIC_EVENT_SCHEMA, load_schema
from spark_jobs.schema import CORRUPT_COLUMN, field_rules, lenient_struct, metric_event_struct

J_PER_KWH = 3.6e6
SLOT_S = 300  # resolution of the intensity lookup: 5 min divides 15/30/60-min grid data
MIN_VALID_EPOCH_S = 946_684_800  # 2000-01-01T00:00:00Z: older timestamps are absurd
MAX_FUTURE_S = 86_400  # a timestamp more than a day ahead of the job's clock is absurd

REQUIRED = ("timestamp", "run_id", "user_id", "model_name", "interval_s")
DEVICES = ("cpu", "gpu", "ram")


def _contract() -> dict[str, Any]:
    return load_schema(METRIC_EVENT_SCHEMA)


def parse(raw: DataFrame) -> DataFrame:
    """Kafka rows -> one row per event: the parsed struct ``e``, source coordinates, value text."""
    schema = metric_event_struct(corrupt_column=True)
    opts = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN}
    # Parsed inside a generator (explode of a one-element array) so that the optimizer cannot
    # copy from_json into later filters on the parsed fields: predicate pushdown through a
    # projection inlines its aliases, and each event would be parsed twice.
    return raw.select(
        F.col("topic").alias("src_topic"),
        F.col("partition").alias("src_partition"),
        F.col("offset").alias("src_offset"),
        F.col("value").cast("string").alias("raw"),
    ).select("*", F.explode(F.array(F.from_json("raw", schema, opts))).alias("e"))


CORRUPT = "corrupt"  # placeholder reason of the hot path; ``explain_rejects`` refines it


def _wrong_type_reason() -> Column:
    """Only evaluated for records Spark flagged as corrupt: which field failed to convert."""
    contract = _contract()
    lenient = F.from_json("raw", lenient_struct(contract))
    expr = F.lit("wrong_type")
    for field in reversed(lenient_struct(contract).fieldNames()):
        expr = F.when(
            lenient[field].isNotNull() & F.col(f"e.{field}").isNull(),
            F.lit(f"wrong_type:{field}"),
        ).otherwise(expr)
    return expr


def event_time(text: Column) -> Column:
    """ISO-8601 text -> timestamp. The common ``...Z`` form is parsed without its zone suffix
    (the session is UTC): Spark resolves a zone named in the text per row, with a regex, which
    cost ~4 % of the job's CPU in a profile. Any other form takes the general parser."""
    return F.when(
        text.endswith("Z"), F.try_to_timestamp(F.substring(text, F.lit(1), F.length(text) - 1))
    ).otherwise(F.try_to_timestamp(text))


def check(parsed: DataFrame, watermark_epoch_s: float | None = None) -> DataFrame:
    """Adds ``ts``, ``ts_s`` and ``reason`` (null = valid; first failing rule wins).

    The hot path: every rule is a built-in, code-generated expression. A record Spark flagged
    as corrupt (not JSON, or a field of the wrong type) gets the placeholder ``corrupt`` here;
    finding *which* field needs a second, lenient parse, which ``explain_rejects`` does for
    the rejects only (a single non-generated expression would drop the whole filter out of
    whole-stage code generation for every event).
    ``watermark_epoch_s``: events older than this are ``late`` (beyond the allowed lateness).
    """
    ts = event_time(F.col("e.timestamp"))
    # One select per step (not a withColumn each): PySpark analyses the whole plan again for
    # every new DataFrame, and with this many expressions that cost ~1 s per micro-batch.
    df = parsed.select("*", ts.alias("ts"), F.unix_timestamp(ts).alias("ts_s"))
    region = F.coalesce(F.col("e.region"), F.col("e.region_iso"))

    checks: list[tuple[Column, Column]] = [
        (F.col("e").isNull() | F.col(f"e.{CORRUPT_COLUMN}").isNotNull(), F.lit(CORRUPT)),
    ]
    for name in REQUIRED:
        checks.append((F.col(f"e.{name}").isNull(), F.lit(f"missing_field:{name}")))
    checks.append((region.isNull() | (F.length(region) == 0), F.lit("missing_field:region")))
    for name in ("run_id", "user_id", "model_name"):
        checks.append((F.length(F.col(f"e.{name}")) == 0, F.lit(f"empty_field:{name}")))
    checks.append((F.col("ts").isNull(), F.lit("bad_timestamp")))
    now_s = F.unix_timestamp(F.current_timestamp())
    checks.append(
        (
            (F.col("ts_s") < MIN_VALID_EPOCH_S) | (F.col("ts_s") > now_s + MAX_FUTURE_S),
            F.lit("absurd_timestamp"),
        )
    )
    for rule in field_rules(_contract()):
        c = F.col(f"e.{rule.name}")
        if rule.enum is not None:
            checks.append((c.isNotNull() & ~c.isin(*rule.enum), F.lit(f"bad_value:{rule.name}")))
            continue
        if rule.minimum is not None:
            label = "negative_value" if rule.minimum == 0 else "out_of_range"
            checks.append((c < rule.minimum, F.lit(f"{label}:{rule.name}")))
        if rule.exclusive_minimum is not None:
            checks.append((c <= rule.exclusive_minimum, F.lit(f"out_of_range:{rule.name}")))
        if rule.maximum is not None:
            checks.append((c > rule.maximum, F.lit(f"out_of_range:{rule.name}")))
    if watermark_epoch_s is not None:
        checks.append((F.col("ts_s") < F.lit(int(watermark_epoch_s)), F.lit("late")))

    reason: Column = F.lit(None).cast("string")
    for cond, label_col in reversed(checks):
        reason = F.when(cond, label_col).otherwise(reason)
    return df.select("*", reason.alias("reason"))


def explain_rejects(rejects: DataFrame) -> DataFrame:
    """Replaces the placeholder ``corrupt`` with ``not_json`` or ``wrong_type:<field>``.

    ``json_object_keys`` and the lenient parse re-read the text: rejects only.
    """
    not_json = F.col("e").isNull() | F.json_object_keys("raw").isNull()
    detail = F.when(not_json, F.lit("not_json")).otherwise(_wrong_type_reason())
    return rejects.withColumn(
        "reason", F.when(F.col("reason") == CORRUPT, detail).otherwise(F.col("reason"))
    )


def with_reason(parsed: DataFrame, watermark_epoch_s: float | None = None) -> DataFrame:
    """``check`` with every reason spelled out (what the dead-letter topic carries)."""
    return explain_rejects(check(parsed, watermark_epoch_s))


def normalise(valid: DataFrame) -> DataFrame:
    """Valid events -> flat typed columns with energies in J and kWh (legacy fields mapped)."""
    e = "e."
    cols: list[Column] = [
        F.col("ts"),
        F.col("ts_s"),
        F.col(e + "run_id").alias("run_id"),
        F.col(e + "user_id").alias("user_id"),
        F.col(e + "model_name").alias("model_name"),
        F.coalesce(F.col(e + "host"), F.lit("unknown")).alias("host"),
        F.upper(F.coalesce(F.col(e + "region"), F.col(e + "region_iso"))).alias("zone"),
        F.col(e + "interval_s").alias("interval_s"),
        F.col(e + "seq").alias("seq"),
        F.coalesce(F.col(e + "event_type"), F.lit("sample")).alias("event_type"),
        F.col(e + "cpu_utilization_pct").alias("cpu_utilization_pct"),
        F.col(e + "gpu_utilization_pct").alias("gpu_utilization_pct"),
        F.col(e + "gpu_mem_used_mb").alias("gpu_mem_used_mb"),
        F.col(e + "ram_used_mb").alias("ram_used_mb"),
        F.coalesce(
            F.col(e + "net_sent_bytes"), (F.col(e + "net_sent_mb") * 1_000_000).cast("long")
        ).alias("net_sent_bytes"),
        F.coalesce(
            F.col(e + "net_recv_bytes"), (F.col(e + "net_recv_mb") * 1_000_000).cast("long")
        ).alias("net_recv_bytes"),
        F.col(e + "disk_read_bytes").alias("disk_read_bytes"),
        F.col(e + "disk_write_bytes").alias("disk_write_bytes"),
        F.col(e + "grid_carbon_intensity_g_per_kwh").alias("reported_g_per_kwh"),
        F.col(e + "schedule_decision_id").alias("schedule_decision_id"),
        F.col(e + "epoch").alias("epoch"),
        F.col(e + "step").alias("step"),
        F.col(e + "cpu_host_energy_j").alias("cpu_host_energy_j"),
        F.col("src_partition"),
        F.col("src_offset"),
    ]
    for dev in DEVICES:
        energy = F.coalesce(
            F.col(f"{e}{dev}_energy_j"), F.col(f"{e}{dev}_power_w") * F.col(e + "interval_s")
        )
        cols.append(energy.alias(f"{dev}_energy_j"))
        cols.append(
            F.when(energy.isNull(), F.lit(None))
            .otherwise(F.coalesce(F.col(f"{e}{dev}_method"), F.lit("unknown")))
            .alias(f"{dev}_method")
        )
    df = valid.select(*cols)
    total = sum((F.coalesce(F.col(f"{d}_energy_j"), F.lit(0.0)) for d in DEVICES), F.lit(0.0))
    return df.select("*", total.alias("energy_j"), (total / J_PER_KWH).alias("energy_kwh"))


def with_intensity(
    events: DataFrame, slots: DataFrame, fallback: DataFrame, world_g_per_kwh: float
) -> DataFrame:
    """Join each event with the intensity in force for its zone at its timestamp.

    ``slots``: (zone, slot_s, seg_start_s, seg_end_s, ref_g_per_kwh, ref_provider, ref_kind):
    non-overlapping segments, listed under every ``SLOT_S`` slot they touch. ``fallback``:
    (zone, fb_g_per_kwh, fb_source). Both are small and broadcast (left joins, so only they
    can be), and the hot path is a hash lookup on (zone, slot) plus a range check.
    ``world_g_per_kwh``: the last resort, a literal (a cross join could broadcast the events).
    """
    ev = events.select("*", (F.col("ts_s") - F.pmod(F.col("ts_s"), F.lit(SLOT_S))).alias("slot_s"))
    sl = slots.select(
        F.col("zone").alias("sl_zone"), F.col("slot_s").alias("sl_slot_s"),
        "seg_start_s", "seg_end_s", "ref_g_per_kwh", "ref_provider", "ref_kind",
    )  # fmt: skip
    cond = (
        (ev["zone"] == sl["sl_zone"])
        & (ev["slot_s"] == sl["sl_slot_s"])
        & (ev["ts_s"] >= sl["seg_start_s"])
        & (ev["ts_s"] < sl["seg_end_s"])
    )
    df = ev.join(F.broadcast(sl), cond, "left").join(F.broadcast(fallback), ["zone"], "left")
    ref, rep, fb = F.col("ref_g_per_kwh"), F.col("reported_g_per_kwh"), F.col("fb_g_per_kwh")
    ci = F.coalesce(ref, rep, fb, F.lit(float(world_g_per_kwh)))
    provider = (
        F.when(ref.isNotNull(), F.col("ref_provider"))
        .when(rep.isNotNull(), F.lit("host-reported"))
        .when(fb.isNotNull(), F.lit("static"))
        .otherwise(F.lit("static:WORLD"))
    )
    kind = (
        F.when(ref.isNotNull(), F.col("ref_kind"))
        .when(rep.isNotNull(), F.lit("reported"))
        .otherwise(F.lit("fallback"))
    )
    return df.select(
        *[F.col(c) for c in events.columns],
        ci.alias("intensity_g_per_kwh"),
        provider.alias("intensity_provider"),
        kind.alias("intensity_kind"),
        (F.col("energy_kwh") * ci).alias("co2_g"),
    )


WINDOW_KEYS = ("run_id", "user_id", "model_name", "host", "zone", "window_start_s")
# Also grouped on (rows folded per window in the driver): keeps every aggregate fixed-width, so
# Spark uses its code-generated hash aggregation instead of the slower object-based one that
# collect_set/first would need.
GROUP_EXTRA = ("intensity_provider", "schedule_decision_id")


def windows(enriched: DataFrame, window_s: int) -> DataFrame:
    """Tumbling-window totals per run, user, model, host and zone (partial: one micro-batch).

    One row per window *and* intensity provider / schedule decision: fold them with
    ``spark_jobs.hot_store.fold_windows``.
    """
    kwh = F.col("energy_kwh")

    def dev_kwh(dev: str) -> Column:
        return F.coalesce(F.col(f"{dev}_energy_j"), F.lit(0.0)) / J_PER_KWH

    def by_method(method: str) -> Column:
        parts = [
            F.when(F.col(f"{d}_method") == method, dev_kwh(d)).otherwise(F.lit(0.0))
            for d in DEVICES
        ]
        return parts[0] + parts[1] + parts[2]

    return (
        enriched.withColumn(
            "window_start_s", F.col("ts_s") - F.pmod(F.col("ts_s"), F.lit(window_s))
        )
        .groupBy(*WINDOW_KEYS, *GROUP_EXTRA)
        .agg(
            F.sum(kwh).alias("energy_kwh"),
            F.sum(dev_kwh("cpu")).alias("cpu_kwh"),
            F.sum(dev_kwh("gpu")).alias("gpu_kwh"),
            F.sum(dev_kwh("ram")).alias("ram_kwh"),
            F.sum(by_method("measured")).alias("measured_kwh"),
            F.sum(by_method("estimated")).alias("estimated_kwh"),
            F.sum("co2_g").alias("co2_g"),
            F.sum(F.when(F.col("intensity_kind") == "fallback", kwh).otherwise(0.0)).alias(
                "fallback_kwh"
            ),
            F.sum(F.when(F.col("intensity_kind") == "forecast", kwh).otherwise(0.0)).alias(
                "forecast_kwh"
            ),
            F.sum("interval_s").alias("covered_s"),
            F.count(F.lit(1)).alias("n_events"),
            F.min("ts_s").alias("first_ts_s"),
            F.max("ts_s").alias("last_ts_s"),
            F.min("seq").alias("min_seq"),
            F.max("seq").alias("max_seq"),
            F.sum("cpu_utilization_pct").alias("sum_cpu_utilization_pct"),
            F.max("gpu_mem_used_mb").alias("max_gpu_mem_used_mb"),
            F.max("ram_used_mb").alias("max_ram_used_mb"),
            F.max(F.when(F.col("event_type") == "end", F.lit(1)).otherwise(0)).alias("ended"),
        )
    )
