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

import json
import sys
import time
from collections.abc import Mapping
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from carbonpipe.core.aggregates import AGGREGATES
from carbonpipe.core.contracts import METRIC_EVENT_SCHEMA, load_schema
from carbonpipe.core.units import DEVICES, J_PER_KWH
from spark_jobs.schema import (
    CORRUPT_COLUMN,
    FieldRule,
    any_required,
    field_rules,
    lenient_struct,
    map_rules,
    metric_event_struct,
)

SLOT_S = 300  # resolution of the intensity lookup: 5 min divides 15/30/60-min grid data
MIN_VALID_EPOCH_S = 946_684_800  # 2000-01-01T00:00:00Z: older timestamps are absurd
MAX_FUTURE_S = 86_400  # a timestamp more than a day ahead of the job's clock is absurd
# An event dated more than this ahead of the time the broker appended it (the topic uses
# LogAppendTime): the host's clock is wrong, and its figures would land in windows that have
# not happened yet. NTP keeps honest hosts within milliseconds; 5 min leaves room for a VM
# resumed from suspend before its clock is stepped.
MAX_SKEW_S = 300
LATE_BEFORE = "late_before_s"  # per event: older than this is late (its host's progress)


def _contract() -> dict[str, Any]:
    return load_schema(METRIC_EVENT_SCHEMA)


def parse(raw: DataFrame) -> DataFrame:
    """Kafka rows -> one row per event: the parsed struct ``e``, source coordinates, value text."""
    schema = metric_event_struct(corrupt_column=True)
    opts = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN}
    # Parsed inside a generator (explode of a one-element array) so that the optimizer cannot
    # copy from_json into later filters on the parsed fields: predicate pushdown through a
    # projection inlines its aliases, and each event would be parsed twice.
    broker_ts = (
        F.unix_timestamp(F.col("timestamp")) if "timestamp" in raw.columns
        else F.lit(None).cast("long")
    )  # fmt: skip
    return raw.select(
        F.col("topic").alias("src_topic"),
        F.col("partition").alias("src_partition"),
        F.col("offset").alias("src_offset"),
        broker_ts.alias("src_ts_s"),
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


def lookup_map(table: Mapping[str, Any], value_type: str) -> Column:
    """A small driver-side table (hosts' progress, zones' fallback intensity) as a map
    literal, for ``try_element_at``: a hash lookup in the generated code instead of a broadcast
    join, which ran a Spark job per table and micro-batch (0.1-0.4 s each on 2 cores,
    bench/bench_latency.py). Built from one JSON text (one JVM call, not one per entry: a
    literal per zone took ~2 s per batch); the optimizer folds it to one map literal that the
    generated code gets by reference, so new values compile nothing
    (``test_validation_is_compiled_once_not_per_batch``)."""
    return F.from_json(F.lit(json.dumps(dict(table))), f"map<string,{value_type}>")


def check(parsed: DataFrame, late_before: Mapping[str, float] | None = None,
          host_prefix: str | None = None) -> DataFrame:
    """Adds ``ts``, ``ts_s`` and ``reason`` (null = valid; first failing rule wins).

    The hot path: every rule is a built-in, code-generated expression. A record Spark flagged
    as corrupt (not JSON, or a field of the wrong type) gets the placeholder ``corrupt`` here;
    finding *which* field needs a second, lenient parse, which ``explain_rejects`` does for
    the rejects only (a single non-generated expression would drop the whole filter out of
    whole-stage code generation for every event).
    ``late_before``: per host, events older than this are ``late`` (beyond the allowed
    lateness behind that host's own newest event: one host cannot make another's data late).
    ``host_prefix``: with host topics (``<metrics_topic>.host.``), an event whose ``host`` is
    not the one its topic names is ``host_mismatch`` (ACLs let only that host write there).
    """
    timed = with_event_time(parsed)
    host = F.coalesce(F.col("e.host"), F.lit("unknown"))
    lookup = lookup_map({h: int(t) for h, t in (late_before or {}).items()}, "long")
    timed = timed.select("*", F.try_element_at(lookup, host).alias(LATE_BEFORE))
    # One select per step (not a withColumn each): PySpark analyses the whole plan again for
    # every new DataFrame, and with this many expressions that cost ~1 s per micro-batch.
    return timed.select("*", F.expr(reason_sql(host_prefix, job_clock_s())).alias("reason"))


CLOCK_STEP_S = 3600


def job_clock_s(now_s: float | None = None) -> int:
    """The job's clock for the ``absurd_timestamp`` rule, rounded up to the hour.

    Why rounded: the clock is a literal in the rule, and Spark compiles a literal into the
    generated code, so a clock that changes every batch recompiled the whole validation stage
    every batch (one Janino compilation of 0.2-0.6 s on this machine, per micro-batch). Rounded
    up, it changes once an hour and the rule is at most an hour more lenient than "a day".
    """
    now = time.time() if now_s is None else now_s
    return int(-(-now // CLOCK_STEP_S) * CLOCK_STEP_S)


def with_event_time(parsed: DataFrame) -> DataFrame:
    """Adds ``ts`` (timestamp) and ``ts_s`` (epoch seconds) from ``e.timestamp``."""
    ts = event_time(F.col("e.timestamp"))
    return parsed.select("*", ts.alias("ts"), F.unix_timestamp(ts).alias("ts_s"))


def _sql_string(value: str) -> str:
    if not value.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"enum value {value!r} in {METRIC_EVENT_SCHEMA}: letters, digits, _ and -")
    return f"'{value}'"


def _literal(value: Any, rule: FieldRule) -> str:
    """A contract value as a SQL literal of the field's own type (no per-row cast of a long)."""
    if isinstance(value, bool) or rule.type in ("string", "boolean"):
        if isinstance(value, bool):
            return "true" if value else "false"
        return _sql_string(value)
    if rule.type == "integer" and float(value).is_integer():
        return f"{int(value)}L"
    return f"{float(value)!r}D"  # a double literal


# Above every finite double: Spark orders NaN above +Infinity, so ``hi > MAX`` catches NaN
# and +Infinity (the JSON parser reads ``NaN``/``Infinity`` tokens and literals like 1e400).
_MAX_DOUBLE = f"{sys.float_info.max!r}D"


def _quoted(label: str) -> str:
    return f"'{label}'"


def _labelled(checks: list[tuple[str, str]]) -> str:
    """The reason of the first failing check, as SQL: evaluated only for a failing value."""
    if len(checks) == 1:
        return _quoted(checks[0][1])
    whens = " ".join(f"WHEN {cond} THEN {_quoted(label)}" for cond, label in checks[:-1])
    return f"CASE {whens} ELSE {_quoted(checks[-1][1])} END"


def _value_checks(rule: FieldRule, col: str) -> tuple[str, list[tuple[str, str]]]:
    """(condition that holds for a valid value, the labelled checks in order) of one field.

    A valid value costs one test per bound: NaN and Infinity fail ``x <= MAX`` (or the
    field's own maximum) without a test of their own; the checks that name the reason run
    only for a value that failed. A null (absent) value passes: ``NULL >= 0`` is not false.
    ``col`` is a value, or an array of values (then ``array_min``/``array_max``/
    ``array_except``: built-in and code-generated, unlike lambda functions such as
    ``exists``, which would take the whole rule set out of whole-stage code generation).
    """
    lo, hi = (f"array_min({col})", f"array_max({col})") if rule.in_array else (col, col)
    oks: list[str] = []
    checks: list[tuple[str, str]] = []
    allowed = (rule.const,) if rule.const is not None else rule.enum
    if allowed is not None:
        items = ", ".join(_literal(v, rule) for v in allowed)
        # NULL in the allowed set: an item without the field passes
        bad = (
            f"size(array_except({col}, array({items}, NULL))) > 0"
            if rule.in_array
            else f"{col} NOT IN ({items})"
        )
        oks.append(f"NOT ({bad})")
        checks.append((bad, f"bad_value:{rule.name}"))
    if rule.type == "number":
        checks.append((f"{hi} > {_MAX_DOUBLE} OR {lo} < -{_MAX_DOUBLE}", f"not_finite:{rule.name}"))
    bounds = [
        (rule.minimum, "<", ">=", lo), (rule.exclusive_minimum, "<=", ">", lo),
        (rule.maximum, ">", "<=", hi), (rule.exclusive_maximum, ">=", "<", hi),
    ]  # fmt: skip
    for bound, fails, holds, side in bounds:
        if bound is None:
            continue
        label = "negative_value" if fails == "<" and bound == 0 else "out_of_range"
        oks.append(f"{side} {holds} {_literal(bound, rule)}")
        checks.append((f"{side} {fails} {_literal(bound, rule)}", f"{label}:{rule.name}"))
    if rule.type == "number":
        if rule.minimum is None and rule.exclusive_minimum is None:
            oks.append(f"{lo} >= -{_MAX_DOUBLE}")
        if rule.maximum is None and rule.exclusive_maximum is None:
            oks.append(f"{hi} <= {_MAX_DOUBLE}")
    return " AND ".join(oks), checks


def _length_checks(rule: FieldRule, col: str) -> list[tuple[str, str]]:
    if rule.min_length is None and rule.max_length is None:
        return []
    if rule.in_array:
        raise ValueError(f"{rule.name}: string length inside an array has no Spark rule")
    checks = []
    if rule.min_length is not None:
        label = "empty_field" if rule.min_length == 1 else "too_short"
        checks.append((f"length({col}) < {int(rule.min_length)}", f"{label}:{rule.name}"))
    if rule.max_length is not None:
        checks.append((f"length({col}) > {int(rule.max_length)}", f"too_long:{rule.name}"))
    return checks


def _column(rule: FieldRule) -> str:
    return "e." + ".".join(f"`{p}`" for p in rule.path)


HOST_MISMATCH = "host_mismatch"


def _host_rule(host_prefix: str) -> tuple[str, str]:
    """``host`` must be what the topic after ``host_prefix`` says (the topic's ACL is the
    proof of identity; a record itself does not name the principal that wrote it)."""
    if not host_prefix.replace(".", "").replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"host topic prefix {host_prefix!r}: letters, digits, . _ and - only")
    claimed = f"substring(src_topic, {len(host_prefix) + 1})"
    return (f"NOT startswith(src_topic, '{host_prefix}') OR NOT (e.host <=> {claimed})",
            _quoted(HOST_MISMATCH))


def reason_sql(host_prefix: str | None = None, clock_s: int | None = None) -> str:
    """The rules as one SQL ``CASE`` over ``e``, ``ts`` and ``ts_s``: one call into the JVM
    instead of thousands of Column calls (~1 s per micro-batch), and a flat CASE generates
    simpler code than nested ``when``s. Every label is a fixed string from this module.

    Every contract rule comes from ``schemas/metric_event.v1.json`` through ``field_rules`` and
    ``any_required`` (required, lengths, const, enums, finiteness, ranges, nested items); only
    the time rules (``bad_timestamp``, ``absurd_timestamp``, ``future_timestamp`` against the
    broker's append time ``src_ts_s``, ``late`` against the host's progress) are the job's own.
    Order (first failure wins): corrupt, missing, host (``host_prefix``: see ``check``),
    lengths, time, values in contract order.
    One ``WHEN`` per field, and one per array of objects (skipped by one null test where the
    event has no such array): the generated code must stay small, since the whole CASE is one
    method in whole-stage code generation and a long method is interpreted, not compiled.
    """
    contract = _contract()
    rules = field_rules(contract)
    whens: list[tuple[str, str]] = [
        (f"e IS NULL OR e.`{CORRUPT_COLUMN}` IS NOT NULL", _quoted(CORRUPT)),
    ]
    whens += [(f"e.`{r.name}` IS NULL", _quoted(f"missing_field:{r.name}"))
              for r in rules if r.required]  # fmt: skip
    for names in any_required(contract):
        cond = " AND ".join(f"e.`{n}` IS NULL" for n in names)
        whens.append((cond, _quoted(f"missing_field:{names[0]}")))
    if host_prefix is not None:
        whens.append(_host_rule(host_prefix))
    whens += [(c, _quoted(label)) for r in rules for c, label in _length_checks(r, _column(r))]
    whens.append(("ts IS NULL", _quoted("bad_timestamp")))
    whens.append(
        (
            f"ts_s < {MIN_VALID_EPOCH_S} OR "
            f"ts_s > {job_clock_s() if clock_s is None else int(clock_s)}L + {MAX_FUTURE_S}",
            _quoted("absurd_timestamp"),
        )
    )
    whens.append(
        (f"src_ts_s IS NOT NULL AND ts_s > src_ts_s + {MAX_SKEW_S}", _quoted("future_timestamp"))
    )
    arrays: dict[str, list[tuple[str, list[tuple[str, str]]]]] = {}
    for rule in rules:
        ok, checks = _value_checks(rule, _column(rule))
        if not checks:
            continue
        if rule.in_array:
            arrays.setdefault(rule.path[0], []).append((ok, checks))
            if len(arrays[rule.path[0]]) == 1:  # the array's place in the contract's order
                whens.append((rule.path[0], ""))
        else:
            whens.append((f"NOT ({ok})", _labelled(checks)))
    for i, (cond, _) in enumerate(whens):
        if cond in arrays:
            items = arrays[cond]
            all_ok = " AND ".join(f"({ok})" for ok, _ in items)
            whens[i] = (
                f"e.`{cond}` IS NOT NULL AND NOT ({all_ok})",
                _labelled([c for _, checks in items for c in checks]),
            )
    for m in map_rules(contract):
        col = f"e.`{m.name}`"
        whens.append((f"size({col}) > {m.max_properties}", _quoted(f"too_many:{m.name}")))
        whens.append((f"exists(map_keys({col}), k -> NOT k rlike '{m.key_pattern}')",
                      _quoted(f"bad_key:{m.name}")))  # fmt: skip
        whens.append((f"exists(map_values({col}), v -> length(v) > {m.max_value_length})",
                      _quoted(f"too_long:{m.name}")))  # fmt: skip
    whens.append((f"{LATE_BEFORE} IS NOT NULL AND ts_s < {LATE_BEFORE}", _quoted("late")))
    body = " ".join(f"WHEN {cond} THEN {label}" for cond, label in whens)
    return f"CASE {body} ELSE CAST(NULL AS STRING) END"


def explain_rejects(rejects: DataFrame) -> DataFrame:
    """Replaces the placeholder ``corrupt`` with ``not_json`` or ``wrong_type:<field>``.

    ``json_object_keys`` and the lenient parse re-read the text: rejects only.
    """
    not_json = F.col("e").isNull() | F.json_object_keys("raw").isNull()
    detail = F.when(not_json, F.lit("not_json")).otherwise(_wrong_type_reason())
    return rejects.withColumn(
        "reason", F.when(F.col("reason") == CORRUPT, detail).otherwise(F.col("reason"))
    )


def with_reason(parsed: DataFrame, late_before: Mapping[str, float] | None = None,
                host_prefix: str | None = None) -> DataFrame:
    """``check`` with every reason spelled out (what the dead-letter topic carries)."""
    return explain_rejects(check(parsed, late_before, host_prefix))


# Flat event columns (SQL over the parsed struct ``e``): as expression text, one JVM call each.
PLAIN = (
    "run_id", "user_id", "model_name", "interval_s", "seq", "cpu_utilization_pct",
    "gpu_utilization_pct", "gpu_mem_used_mb", "ram_used_mb", "disk_read_bytes",
    "disk_write_bytes", "schedule_decision_id", "epoch", "step", "cpu_host_energy_j",
    # the collector's prediction (carbonpipe.core.aggregates: the latest value per window)
    "predicted_energy_kwh", "predicted_co2_g", "predicted_epochs", "predicted_kwh_per_epoch",
    # the run's tags and the host's hardware (the latest value per window)
    "tags", "cpu_name", "cpu_count", "ram_total_mb", "os",
)  # fmt: skip


def normalise(valid: DataFrame) -> DataFrame:
    """Valid events -> flat typed columns with energies in J and kWh (legacy fields mapped)."""
    cols = [
        "ts", "ts_s", *(f"e.`{c}` AS {c}" for c in PLAIN),
        "coalesce(e.host, 'unknown') AS host",
        "upper(coalesce(e.region, e.region_iso)) AS zone",
        "coalesce(e.event_type, 'sample') AS event_type",
        "coalesce(e.net_sent_bytes, CAST(e.net_sent_mb * 1000000 AS BIGINT)) AS net_sent_bytes",
        "coalesce(e.net_recv_bytes, CAST(e.net_recv_mb * 1000000 AS BIGINT)) AS net_recv_bytes",
        "e.grid_carbon_intensity_g_per_kwh AS reported_g_per_kwh",
        # the GPUs the event reports (``gpu_hours``): its count, else its per-GPU list, else 0
        "coalesce(e.gpu_count, CASE WHEN e.gpus IS NOT NULL THEN size(e.gpus) END, 0) AS gpu_count",
        "src_partition", "src_offset",
    ]  # fmt: skip
    for dev in DEVICES:
        energy = f"coalesce(e.{dev}_energy_j, e.{dev}_power_w * e.interval_s)"
        cols.append(f"{energy} AS {dev}_energy_j")
        cols.append(
            f"CASE WHEN {energy} IS NULL THEN NULL "
            f"ELSE coalesce(e.{dev}_method, 'unknown') END AS {dev}_method"
        )
    total = " + ".join(f"coalesce({d}_energy_j, 0D)" for d in DEVICES)
    return valid.selectExpr(*cols).selectExpr(
        "*", f"{total} AS energy_j", f"({total}) / {J_PER_KWH!r}D AS energy_kwh"
    )


def with_intensity(
    events: DataFrame,
    slots: DataFrame,
    fallback: Mapping[str, tuple[float, str]],
    world_g_per_kwh: float,
) -> DataFrame:
    """Join each event with the intensity in force for its zone at its timestamp.

    ``slots``: (zone, slot_s, seg_start_s, seg_end_s, ref_g_per_kwh, ref_provider, ref_kind):
    non-overlapping segments, listed under every ``SLOT_S`` slot they touch: small and
    broadcast (a left join, so only it can be); the hot path is a hash lookup on (zone, slot)
    plus a range check. ``fallback``: zone -> (g/kWh, source), the cited annual averages, a
    map literal (``lookup_map``).
    ``world_g_per_kwh``: the last resort, a literal (a cross join could broadcast the events).
    """
    from spark_jobs.reference import STATIC_PROVIDER, WORLD_PROVIDER

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
    fb_g = lookup_map({z: v for z, (v, _) in fallback.items()}, "double")
    fb_src = lookup_map({z: src for z, (_, src) in fallback.items()}, "string")
    df = ev.join(F.broadcast(sl), cond, "left").select(
        "*",
        F.try_element_at(fb_g, F.col("zone")).alias("fb_g_per_kwh"),
        F.try_element_at(fb_src, F.col("zone")).alias("fb_source"),
    )
    ref, rep, fb = F.col("ref_g_per_kwh"), F.col("reported_g_per_kwh"), F.col("fb_g_per_kwh")
    ci = F.coalesce(ref, rep, fb, F.lit(float(world_g_per_kwh)))
    provider = (
        F.when(ref.isNotNull(), F.col("ref_provider"))
        .when(rep.isNotNull(), F.lit("host-reported"))
        .when(fb.isNotNull(), F.lit(STATIC_PROVIDER))
        .otherwise(F.lit(WORLD_PROVIDER))
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
    """Tumbling-window totals per run, user, model, host and zone (partial: one micro-batch):
    the aggregates of ``carbonpipe.core.aggregates.AGGREGATES``.

    One row per window *and* intensity provider / schedule decision: fold them with
    ``spark_jobs.merge.fold_windows``.
    """

    return (
        enriched.selectExpr("*", f"ts_s - pmod(ts_s, {int(window_s)}) AS window_start_s")
        .groupBy(*WINDOW_KEYS, *GROUP_EXTRA)
        .agg(*(F.expr(a.spark_sql).alias(a.name) for a in AGGREGATES))
        .select("*", F.lit(int(window_s)).alias("window_s"))
    )
