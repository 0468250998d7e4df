"""The streaming job: Kafka ``training.metrics`` -> MongoDB windows/runs + Parquet events.

One read of the log per micro-batch; every sink is idempotent by batch id, so a restart from
the checkpoint (which re-runs the last uncommitted batch) counts nothing twice:
- dead-letter topic: keyed ``topic:partition:offset`` (a replay re-sends the same keys);
- Parquet: partition ``date=D/batch_id=N`` overwritten as a whole (dynamic overwrite);
- MongoDB: versioned insert-only documents ``key|b<batch>``; a replayed batch's versions
  already exist and are not written again (see ``spark_jobs.hot_store``).
Also runnable as a plain ``spark-submit spark_jobs/stream.py`` application.

Why one module of ~500 lines: ``BatchProcessor`` is the job's one orchestration of a
micro-batch (validation, deduplication, windows, sinks, state), and ``run`` its restart loop;
the pure parts live in ``transforms``, ``dedupe``, ``merge`` and ``reference``.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from carbonpipe.core.config import ConfigError, Settings, get_settings
from carbonpipe.core.errors import CarbonpipeError, UserError
from carbonpipe.core.kafka_security import (
    Redacted,
    host_topic_pattern,
    host_topic_prefix,
    spark_options,
)
from carbonpipe.core.versions import READ_MODELS, RUN_VERSIONS
from spark_jobs import transforms as T
from spark_jobs.dedupe import Range, islands, new_ranges, suspect_pairs
from spark_jobs.hot_store import HotStore
from spark_jobs.intensity_correction import LateIntensity
from spark_jobs.merge import fold_windows
from spark_jobs.reference import IntensityFeed, RefRecord, load_fallback_table, slot_rows
from spark_jobs.session import build_session
from spark_jobs.state import BatchState, StateLog
from spark_jobs.storage import (
    ARCHIVE_STATE,
    archive_off_since,
    begin_rebuild,
    checkpoint_path,
    committed_offsets,
    delete_uri,
    describe_gaps,
    end_rebuild,
    events_path,
    history_gaps,
    metrics_topics,
    move_uri,
    note_archive_off,
    superseded_path,
    unfinished_rebuild,
    uri_exists,
    windows_path,
)

log = logging.getLogger("carbonpipe.stream")

# The per-event archive: the normalised columns, every field the job carries as it is
# (``transforms.PLAIN``: what the aggregates read) included, so an aggregate over a new field is
# archived too and windows can be computed back from the archive.
PARQUET_COLUMNS = tuple(dict.fromkeys((
    "ts", "run_id", "user_id", "model_name", "host", "zone", "interval_s", "seq", "event_type",
    "cpu_energy_j", "cpu_method", "gpu_energy_j", "gpu_method", "ram_energy_j", "ram_method",
    "energy_j", "energy_kwh", "intensity_g_per_kwh", "intensity_provider", "intensity_kind",
    "co2_g", "cpu_utilization_pct", "gpu_utilization_pct", "gpu_mem_used_mb", "ram_used_mb",
    "cpu_host_energy_j", "disk_read_bytes", "disk_write_bytes", "net_sent_bytes",
    "net_recv_bytes", "epoch", "step", "schedule_decision_id", "src_partition", "src_offset",
    "gpu_count",  # derived in ``normalise`` (count, else the per-GPU list): what gpu_hours reads
    *T.PLAIN,
)))  # fmt: skip


# What ``with_intensity`` adds: a replay from the archive looks these up again.
ENRICHED_COLUMNS = ("intensity_g_per_kwh", "intensity_provider", "intensity_kind", "co2_g")
KAFKA_ROW_DDL = (
    "key binary, value binary, topic string, partition int, offset long, "
    "timestamp timestamp, timestampType int"
)


def _range_extras(
    ranges: dict[tuple[str, str], list[Range]],
) -> dict[str, dict[str, Any]]:
    """Per run: the seq ranges this batch counts, per host (``HotStore.write_batch`` extras)."""
    out: dict[str, dict[str, Any]] = {}
    for (host, run), rs in ranges.items():
        out.setdefault(run, {}).setdefault("new_seq_ranges", {})[host] = rs
    return out


def fault(settings: Settings, point: str) -> None:
    """Test-only fault injection (``CARBONPIPE_FAULT_EXIT_AT``): die here, hard (status 137, as
    a SIGKILL would), before Spark commits the batch or the rebuild completes, so the next
    start must recover; the crash tests prove nothing is counted twice or lost."""
    if settings.fault_exit_at == point:
        log.warning("fault injection: exiting at %s", point)
        os._exit(137)


GC_EVERY_BATCHES = 20


class BatchProcessor:
    """``foreachBatch`` body. Holds the reference tables and the sinks between batches."""

    def __init__(self, spark: SparkSession, settings: Settings, store: HotStore) -> None:
        self.spark = spark
        self.settings = settings
        self.store = store
        self.state = StateLog(store.db)
        self.feed = IntensityFeed(settings)
        # Windows charged the fallback are corrected by the hot store in the first batch
        # that knows their intensity (M6); this holds the segments and the waiting windows.
        self.late = LateIntensity()
        store.late = self.late
        store.fault = self._fault
        self._slots_version = -1
        self._slots: DataFrame | None = None
        self.fallback = load_fallback_table(settings.zone_averages_path)
        self.world_g_per_kwh = self.fallback["WORLD"][0]
        self.query_id: str | None = None
        self.query: Any = None  # the running query, for its progress (``kafka_lag``)
        self.last_stats: dict[str, Any] = {}
        self.history: deque[dict[str, Any]] = deque(maxlen=100)  # bounded: runs for months
        self._archive_off_noted = False
        self._compiled_before = 0

    # ------------------------------------------------------------------ reference data
    def _local_df(self, rows: list[tuple[Any, ...]], ddl: str) -> DataFrame:
        """Driver-side rows -> DataFrame through Arrow (no Python workers involved)."""
        import pandas as pd
        from pyspark.sql.types import StructType

        schema = StructType.fromDDL(ddl)
        assert isinstance(schema, StructType)
        pdf = pd.DataFrame(rows, columns=schema.fieldNames())
        return self.spark.createDataFrame(pdf, schema=schema)

    def slots(self, watermark: float | None = None) -> DataFrame:
        """The intensity lookup table of this batch (rebuilt only when the feed changed).

        ``watermark``: no event older is valid in this batch. The feed forgets what only
        older events could use (one window earlier, so a window the watermark cuts can still
        be corrected), and windows ending before it no longer wait for a late intensity.
        """
        horizon = None if watermark is None else watermark - self.settings.window_s
        self.feed.refresh(horizon_s=horizon)
        self.late.horizon_s = watermark
        if self._slots is None or self._slots_version != self.feed.version:
            segments = self.feed.segments()
            if self._slots is not None:
                self._slots.unpersist()
            self._slots = self._local_df(
                slot_rows(segments),
                "zone string, slot_s long, seg_start_s long, seg_end_s long, "
                "ref_g_per_kwh double, ref_provider string, ref_kind string",
            ).cache()
            self._slots_version = self.feed.version
            self.late.use(segments)
            self._publish_intensity(self.feed.take_unpublished())
        return self._slots

    def _publish_intensity(self, records: list[RefRecord]) -> None:
        """Intensity for the dashboard's grid chart (a week back, three days ahead), as it
        arrives: each record is written once, not the whole table per change (M10)."""
        rows = [
            {
                "_id": f"{r.zone}|{r.start_s}",
                "zone": r.zone,
                "start": datetime.fromtimestamp(r.start_s, timezone.utc),
                "end": datetime.fromtimestamp(r.end_s, timezone.utc),
                "carbon_intensity_g_per_kwh": r.g_per_kwh,
                "provider": r.provider,
                "kind": r.kind,
            }
            for r in records
        ]
        if rows:
            self.store.write_intensity(rows)
        self.store.trim_intensity(time.time() - IntensityFeed.DASHBOARD_PAST_S)

    # ------------------------------------------------------------------ one micro-batch
    def __call__(self, df: DataFrame, batch_id: int) -> None:
        """One micro-batch, hot store first (what readers wait for), cold store after:

        1. Kafka -> parse -> validate -> intensity -> window partials, collected and folded by
           the driver; counts and the batch's event-time range come from ``observe`` during
           that pass; with the per-event archive (``CARBONPIPE_COLD_EVENTS``, the default) the
           valid events are kept in memory in the same pass, so each is parsed once;
        2. only if some records were invalid: those records -> dead-letter topic, counted;
        3. the batch -> MongoDB (readers see it from here);
        4. the archive (from memory) and the window partials -> Parquet;
        5. the job's state. Spark commits the batch after all five; a crash anywhere before
           replays it, and every sink skips or overwrites what it already holds of it.
        """
        from pyspark.sql import Observation

        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        self._compiled_before = self._compilations()

        def lap(name: str) -> None:
            timings[name] = round(time.perf_counter() - t0 - sum(timings.values()), 3)

        prior = self.state.before(batch_id)
        late_before = prior.late_before(self.settings.lateness_s)
        lap("state")
        # The oldest time a known host may still send; a new host's older events may find the
        # reference trimmed and get the cited fallback (flagged), never an error.
        slots = self.slots(min(late_before.values(), default=None))
        lap("reference")
        host_prefix = host_topic_prefix(self.settings) if self.settings.kafka_host_topics else None
        checked = T.check(T.parse(df), late_before, host_prefix)
        obs = Observation(f"batch_{batch_id}")
        valid_ts = F.when(F.col("reason").isNull(), F.col("ts_s"))
        observed = checked.observe(
            obs,
            F.count(F.lit(1)).alias("n"),
            F.count("reason").alias("n_invalid"),
            F.min(valid_ts).alias("min_ts_s"),
            F.max(valid_ts).alias("max_ts_s"),
        )
        enriched = T.with_intensity(
            T.normalise(observed.filter(F.col("reason").isNull())),
            slots,
            self.fallback,
            self.world_g_per_kwh,
        )
        archive = self.settings.cold_events
        if archive:  # the archive's columns, kept for step 4 (the windows need no others)
            events = enriched.select(*PARQUET_COLUMNS, "ts_s").persist()
        else:
            events = enriched
            if not self._archive_off_noted:  # a later rebuild cannot rely on the archive
                note_archive_off(self.store.db, batch_id)
                self._archive_off_noted = True
        lap("plan")
        cleanup = [events] if archive else []
        try:
            rows, extras, n_dup, partials = self._count(events, batch_id, lap, cleanup)
            m = obs.get
            counts: dict[str, int] = {}
            n_valid = int(m["n"]) - int(m["n_invalid"])
            if n_valid:
                counts["valid"] = n_valid
            if n_dup:
                counts["duplicate"] = n_dup
            if m["n_invalid"]:
                invalid = T.explain_rejects(checked.filter(F.col("reason").isNotNull()))
                self._dead_letter(invalid, batch_id)
                per_run = invalid.groupBy("reason", F.col("e.run_id").alias("run_id")).count()
                for row in per_run.collect():
                    counts[row["reason"]] = counts.get(row["reason"], 0) + int(row["count"])
                    if row["run_id"]:
                        dead = extras.setdefault(row["run_id"], {}).setdefault("dead_letters", {})
                        dead[row["reason"]] = int(row["count"])
            lap("dead_letters")
            self._fault("after_dead_letters")

            def cold() -> None:
                if archive:
                    self._parquet(events, batch_id)
                    lap("archive_parquet")
                self._parquet_windows(partials, batch_id)
                lap("windows_parquet")

            self._commit(batch_id, rows, counts, extras, prior, timings, t0, int(m["n"]), cold)
        finally:
            for df_ in cleanup:
                df_.unpersist()
        self.last_stats["hosts_late_before"] = len(late_before)
        if batch_id % GC_EVERY_BATCHES == 0:
            # A batch's DataFrames sit in Python reference cycles that only a full collection
            # frees; until then their JVM twins (plans, shuffles: ~0.7 MB a batch) stay pinned
            # through py4j. Without this the JVM's live heap grew 220 -> 350 MB in 5 min at
            # 1,000 events/s; with it 269 -> 225 MB (bench/bench_latency.py, issue 12).
            gc.collect()

    def _commit(
        self,
        batch_id: int,
        rows: list[dict[str, Any]],
        counts: dict[str, int],
        extras: dict[str, dict[str, Any]],
        prior: BatchState,
        timings: dict[str, float],
        t0: float,
        n_events: int,
        cold: Callable[[], None],
    ) -> None:
        """The batch's figures -> MongoDB, then ``cold`` (the Parquet sinks), then the job's
        state (hosts' progress). ``visible_s``: when readers could see the batch."""
        newest_by_host: dict[str, float] = {}
        for r in rows:
            newest_by_host[r["host"]] = max(newest_by_host.get(r["host"], 0), r["last_ts_s"])
        progress = {
            "at": datetime.now(timezone.utc),
            "seconds": round(time.perf_counter() - t0, 3),
            "events": n_events,
            "kafka_lag": self.kafka_lag(),
        }
        n_windows = self.store.write_batch(batch_id, rows, counts, extras, progress)
        timings["mongo"] = round(time.perf_counter() - t0 - sum(timings.values()), 3)
        visible_s = round(time.perf_counter() - t0, 3)
        self._fault("after_mongo")
        cold()
        self._fault("after_windows_parquet")
        self.state.write(prior.advanced(batch_id, newest_by_host, self.query_id))
        self._fault("after_state")
        self.last_stats = {
            "batch_id": batch_id,
            "counts": counts,
            "windows_written": n_windows,
            "seconds": round(time.perf_counter() - t0, 3),
            "visible_s": visible_s,
            "timings_s": timings,
            # Classes Spark generated and compiled in this batch (a steady stream should need
            # none: a per-batch literal in a stage's code costs a compilation every batch).
            "compiled": self._compilations() - self._compiled_before,
        }
        self.history.append(self.last_stats)
        log.info("batch %s", json.dumps(self.last_stats))

    def _count(
        self, events: DataFrame, batch_id: int, lap: Any, cleanup: list[DataFrame]
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], int, DataFrame]:
        """Window partials of ``events``, each ``(host, run_id, seq)`` once (none counted by an
        earlier batch): (folded rows, per-run extras, duplicates dropped, the partials for the
        cold store, kept in memory until ``cleanup`` is unpersisted)."""
        extras: dict[str, dict[str, Any]] = {}
        n_dup = 0
        # One job: the windows are computed, kept in memory and folded by the driver; the
        # cold store gets them as they are (partials per window and provider).
        partials = T.windows(events, self.settings.window_s).persist()
        cleanup.append(partials)
        rows = fold_windows(r.asDict() for r in partials.collect())
        lap("windows")
        suspects = suspect_pairs(rows, self.store.counted_ranges(
            {(str(r["host"]), str(r["run_id"])) for r in rows if r.get("n_seq")},
            batch_id))  # fmt: skip
        if suspects:
            partials, rows, extras, n_dup = self._deduplicate(
                events, partials, rows, suspects, batch_id, cleanup
            )
            lap("deduplicate")
        else:
            extras = _range_extras(new_ranges(rows))
            lap("ranges")  # the driver's seq ranges of every (host, run): what dedupe reads
        return rows, extras, n_dup, partials

    # ------------------------------------------------------------------ rebuild from archive
    def replay_archived(self, archived: DataFrame, batch_id: int) -> None:
        """Archived events (valid when they arrived) counted as one batch, through the same
        intensity join, windows, deduplication and sinks as the log's batches. Their intensity
        is looked up again (the feed may know what was missing then); a column an older
        archive lacks is read as null."""
        t0 = time.perf_counter()
        timings: dict[str, float] = {}

        def lap(name: str) -> None:
            timings[name] = round(time.perf_counter() - t0 - sum(timings.values()), 3)

        prior = self.state.before(batch_id)
        slots = self.slots(None)
        have = set(archived.columns)
        schema = self._normalised_schema()
        cols = [
            F.col(c) if c in have else F.lit(None).cast(schema[c].dataType).alias(c)
            for c in PARQUET_COLUMNS if c not in ENRICHED_COLUMNS
        ]
        reported = F.when(F.col("intensity_kind") == "reported", F.col("intensity_g_per_kwh"))
        events = archived.select(
            *cols, reported.alias("reported_g_per_kwh"), F.unix_timestamp("ts").alias("ts_s")
        )
        enriched = T.with_intensity(events, slots, self.fallback, self.world_g_per_kwh).persist()
        cleanup = [enriched]
        try:
            n = enriched.count()
            lap("read_archive")
            rows, extras, n_dup, partials = self._count(enriched, batch_id, lap, cleanup)
            counts = {"valid": n, **({"duplicate": n_dup} if n_dup else {})}

            def cold() -> None:
                if self.settings.cold_events:
                    self._parquet(enriched, batch_id)  # the new archive is complete again
                self._parquet_windows(partials, batch_id)

            self._commit(batch_id, rows, counts, extras, prior, timings, t0, n, cold)
        finally:
            for df_ in cleanup:
                df_.unpersist()

    def _compilations(self) -> int:
        """Janino compilations so far in this JVM (Spark's codegen metrics)."""
        try:
            metrics = self.spark._jvm.org.apache.spark.metrics.source.CodegenMetrics  # type: ignore[union-attr]
            return int(metrics.METRIC_COMPILATION_TIME().getCount())
        except Exception:  # a diagnostic only (e.g. Spark Connect has no JVM here)
            return 0

    def _normalised_schema(self) -> Any:
        """The types of the normalised event columns (from the job's own transforms)."""
        empty = self.spark.createDataFrame([], KAFKA_ROW_DDL)
        return T.normalise(T.check(T.parse(empty), {}, None)).schema

    def kafka_lag(self) -> int | None:
        """Records behind the log's end when the previous batch was planned (Spark's progress:
        ``latestOffset`` - ``endOffset`` per partition); None before the first progress."""
        try:
            progress = self.query.lastProgress if self.query is not None else None
        except Exception:  # a figure for the health page: never the batch's failure
            log.warning("kafka lag: no progress from the query", exc_info=True)
            return None
        if not progress:
            return None
        return lag_of(progress)

    def _fault(self, point: str) -> None:
        fault(self.settings, point)

    def _deduplicate(
        self,
        events: DataFrame,
        partials: DataFrame,
        rows: list[dict[str, Any]],
        suspects: set[tuple[str, str]],
        batch_id: int,
        cleanup: list[DataFrame],
    ) -> tuple[DataFrame, list[dict[str, Any]], dict[str, dict[str, Any]], int]:
        """Recomputes the partials of the suspect (host, run) pairs from their events, each
        ``(host, run_id, seq)`` once and none counted by an earlier batch (``spark_jobs.dedupe``).
        Returns the batch's partials, their folded rows, per-run extras and duplicates dropped.
        """
        counted = self.store.counted_ranges(suspects, batch_id)
        pairs = self._local_df(sorted(suspects), "d_host string, d_run string")
        ranges = self._local_df(
            [(h, r, lo, hi) for (h, r), rs in counted.items() for lo, hi in rs],
            "c_host string, c_run string, c_lo long, c_hi long",
        )
        mine = (F.col("host") == F.col("d_host")) & (F.col("run_id") == F.col("d_run"))
        ev = events.join(F.broadcast(pairs), mine, "left_semi")
        before = (
            (F.col("host") == F.col("c_host")) & (F.col("run_id") == F.col("c_run"))
            & F.col("seq").between(F.col("c_lo"), F.col("c_hi"))
        )  # fmt: skip
        # Events without a seq (older collectors) keep their own identity: their timestamp.
        seq_key = F.coalesce(F.col("seq"), -1 - F.unix_millis(F.col("ts")))
        fresh = (
            ev.join(F.broadcast(ranges), before, "left_anti")
            .withColumn("seq_key", seq_key)
            .dropDuplicates(["host", "run_id", "seq_key"])
            .drop("seq_key")
            .persist()
        )
        cleanup.append(fresh)
        redone = T.windows(fresh, self.settings.window_s).persist()
        cleanup.append(redone)
        redone_rows = fold_windows(r.asDict() for r in redone.collect())
        seqs: dict[tuple[str, str], list[int]] = {}
        for r in fresh.where("seq IS NOT NULL").select("host", "run_id", "seq").collect():
            seqs.setdefault((r["host"], r["run_id"]), []).append(int(r["seq"]))
        kept = [r for r in rows if (str(r["host"]), str(r["run_id"])) not in suspects]
        extras = _range_extras({**new_ranges(kept), **{p: islands(s) for p, s in seqs.items()}})
        n_dup = 0
        for pair in suspects:
            was = sum(int(r["n_events"]) for r in rows if (r["host"], r["run_id"]) == pair)
            now = sum(int(r["n_events"]) for r in redone_rows if (r["host"], r["run_id"]) == pair)
            if was > now:
                extra = extras.setdefault(pair[1], {})
                extra["duplicates"] = extra.get("duplicates", 0) + was - now
                n_dup += was - now
        out = partials.join(F.broadcast(pairs), mine, "left_anti").unionByName(redone)
        return out, kept + redone_rows, extras, n_dup

    def _dead_letter(self, invalid: DataFrame, batch_id: int) -> None:
        """Invalid records -> the dead-letter topic, each envelope bounded in size.

        A record's text is cut to 64 Ki characters (at most ~400 KB once JSON-escaped, under
        Kafka's 1 MB record limit): an oversized envelope would fail the write, and so the
        batch, for ever (H4). The envelope keeps the full text's length and sha256 and the
        source ``topic:partition:offset``, where the whole record still is.
        """
        raw_max = 64 * 1024
        key = F.concat_ws(":", "src_topic", "src_partition", "src_offset")
        value = F.to_json(
            F.struct(
                F.col("reason"),
                F.substring("raw", 1, raw_max).alias("raw"),
                (F.length("raw") > raw_max).alias("raw_truncated"),
                F.octet_length("raw").alias("raw_bytes"),
                F.sha2(F.col("raw"), 256).alias("raw_sha256"),
                F.col("src_topic").alias("topic"),
                F.col("src_partition").alias("partition"),
                F.col("src_offset").alias("offset"),
                F.lit(batch_id).alias("batch_id"),
                F.date_format(F.current_timestamp(), "yyyy-MM-dd'T'HH:mm:ss'Z'").alias(
                    "detected_at"
                ),
            )
        )
        (
            invalid.select(key.alias("key"), value.alias("value"))
            .write.format("kafka")
            .options(**spark_options(self.settings))
            .option("topic", self.settings.dlq_topic)
            .save()
        )

    def _parquet(self, enriched: DataFrame, batch_id: int) -> None:
        write_batch_partition(enriched.select(*PARQUET_COLUMNS), F.to_date("ts"), batch_id,
                              events_path(self.settings))  # fmt: skip

    def _parquet_windows(self, partials: DataFrame, batch_id: int) -> None:
        """Window partials of this batch (deltas: a window's total is the sum over batches)."""
        write_batch_partition(partials.coalesce(1),
                              F.to_date(F.timestamp_seconds("window_start_s")), batch_id,
                              windows_path(self.settings))  # fmt: skip


def write_batch_partition(df: DataFrame, date: Column, batch_id: int, path: str) -> None:
    """``df`` into ``path/date=…/batch_id=N/``, replacing only what batch ``N`` wrote before
    (a replayed batch overwrites its own partitions, so the cold store counts it once).

    The batch id goes in as a *string* literal: Spark's code generator inlines an integer
    literal into the generated Java, so every batch compiled its writes anew (~4 compilations,
    about a second, per micro-batch); a string is passed by reference and the code is reused.
    The directory name, and the integer type readers infer from it, are the same."""
    (
        df.withColumn("date", date)
        .withColumn("batch_id", F.lit(str(batch_id)))
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("date", "batch_id")
        .parquet(path)
    )


def _offsets(value: Any) -> Any:
    """A progress offset: a dict, its JSON text, or (available-now triggers, whose
    ``latestOffset`` is not per-partition JSON) something else, which has no lag."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def lag_of(progress: Mapping[str, Any]) -> int | None:
    """Records behind the log's end in one ``StreamingQueryProgress`` (None: unknown)."""
    lag = 0
    for src in progress.get("sources") or []:
        end, latest = _offsets(src.get("endOffset")), _offsets(src.get("latestOffset"))
        if not isinstance(end, dict) or not isinstance(latest, dict):
            return None
        for topic, parts in latest.items():
            for part, off in parts.items():
                lag += max(0, int(off) - int((end.get(topic) or {}).get(part, off)))
    return lag


def plan_seed(spark: SparkSession, settings: Settings, store: HotStore) -> dict[str, Any] | None:
    """What a rebuild takes from the per-event archive: None where the log still starts at
    offset 0; else, per partition, the offset the log now starts at (``cut``): the archive's
    events below it are counted first. Refuses (``UserError``, nothing changed) where the
    archive cannot hold them all: the job never read them, or the archive was off."""
    gaps = {t: g for t in metrics_topics(settings) if (g := history_gaps(settings, t))}
    if not gaps:
        return None
    topic = settings.metrics_topic
    why = ""
    if settings.kafka_host_topics:
        why = ("with host topics (CARBONPIPE_KAFKA_HOST_TOPICS) the archive does not record "
               "which host topic an event came from, so it cannot stand in for one")  # fmt: skip
    elif (off := archive_off_since(store.db)) is not None:
        why = (f"the per-event archive was off from batch {off} on (CARBONPIPE_COLD_EVENTS="
               "false), so it does not hold every event the log lost")  # fmt: skip
    elif not uri_exists(spark, events_path(settings)):
        why = f"there is no per-event archive at {events_path(settings)}"
    else:
        read = committed_offsets(spark, settings).get(topic, {})
        unread = [
            f"{topic}[{g.partition}] offsets {read.get(g.partition, 0)}..{g.earliest - 1}"
            for g in gaps[topic] if read.get(g.partition, 0) < g.earliest
        ]  # fmt: skip
        if unread:
            why = ("the job never read " + ", ".join(unread) + " before they were deleted, "
                   "so no store holds those events")  # fmt: skip
    if why:
        described = "\n  ".join(describe_gaps(t, g) for t, g in gaps.items())
        raise UserError(
            f"refusing to rebuild: retention has deleted the start of the log, and {why}:\n  "
            f"{described}\n"
            f"Nothing was changed: the hot store ({settings.mongo_db}) and the cold store "
            f"({settings.cold_store_uri}) still hold the results of those events. Keep the log "
            f"complete from now on with retention.ms=-1 on {topic} "
            "(CARBONPIPE_METRICS_RETENTION_MS, unlimited by default for new topics) and the "
            "per-event archive on (CARBONPIPE_COLD_EVENTS=true, the default)."
        )
    return {"cut": {str(g.partition): g.earliest for g in gaps[topic]}}


def rebuild(spark: SparkSession, settings: Settings, store: HotStore) -> None:
    """Kappa replay: forget every result, so that they are rebuilt from the log, and from
    the per-event archive where retention has deleted the start of the log.

    The reset is one recoverable step: a marker is written before the first store is reset
    and removed after the last (and after the archive's part is counted), and every start
    refuses while it exists, so a crash half-way cannot leave an empty hot store that a
    restart continues as if nothing happened; ``--rebuild`` again finishes it (the marker
    keeps where the archive to replay went). The checkpoint goes first (no start can resume
    the old offsets); the cold store being replaced is moved aside to
    ``<cold>/superseded/<time>``, never deleted, and the archive is read back from there.
    """
    marker = unfinished_rebuild(store.db)
    seed = marker.get("seed") if marker else None
    if seed is None:
        seed = plan_seed(spark, settings, store)  # before anything changes
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    aside = superseded_path(settings, stamp)
    if seed is not None and "archive" not in seed:
        seed = {**seed, "archive": f"{aside}/events"}
    begin_rebuild(store.db, stamp, seed)
    delete_uri(spark, checkpoint_path(settings))
    for coll in ("windows", RUN_VERSIONS, *READ_MODELS, "stats", "job_state", "intensity",
                 ARCHIVE_STATE):  # fmt: skip
        store.db[coll].drop()
    fault(settings, "in_rebuild")  # half-way: hot store empty, cold store still old
    for name, path in (("events", events_path(settings)), ("windows", windows_path(settings))):
        if move_uri(spark, path, f"{aside}/{name}"):
            log.info("rebuild: moved %s to %s/%s", path, aside, name)
    if seed is not None:
        seed_from_archive(spark, settings, store, seed)
    end_rebuild(store.db)
    log.info("rebuild: stores reset; replaying %s from its start", settings.metrics_topic)


def seed_from_archive(
    spark: SparkSession, settings: Settings, store: HotStore, seed: dict[str, Any]
) -> None:
    """The events the log no longer holds, from the archive, counted before the log's first
    batch: one batch per archived day, numbered below 0 (the new checkpoint's batches start
    at 0), so deduplication and every idempotent sink treat them like any batch."""
    from functools import reduce

    base = str(seed["archive"])
    cut = {int(p): int(o) for p, o in seed["cut"].items()}
    lost = reduce(lambda a, b: a | b, [
        (F.col("src_partition") == p) & (F.col("src_offset") < o) for p, o in cut.items()
    ])  # fmt: skip
    archived = spark.read.option("basePath", base).parquet(base).where(lost)
    days = sorted(r["date"] for r in archived.select("date").distinct().collect())
    processor = BatchProcessor(spark, settings, store)
    try:
        for i, day in enumerate(days):
            processor.replay_archived(archived.where(F.col("date") == day), i - len(days))
            fault(settings, "in_seed")
    finally:
        processor.feed.close()
    log.info("rebuild: counted the archive's events below offsets %s (%d days) from %s",
             cut, len(days), base)  # fmt: skip


def source_options(spark: SparkSession, settings: Settings) -> dict[str, str]:
    """How the job reads the log (the benchmark reads it the same way): the shared metrics
    topic, or with host topics every ``<metrics_topic>.host.<host>`` (a pattern: a new host's
    topic is picked up without a restart). The result is ``Redacted``: safe to log."""
    subscribe = (
        {"subscribePattern": host_topic_pattern(settings)} if settings.kafka_host_topics
        else {"subscribe": settings.metrics_topic}
    )  # fmt: skip
    return Redacted({
        **spark_options(settings),
        **subscribe,
        "startingOffsets": "earliest",
        # Offsets lost to retention or to a recreated topic stop the job with an error
        # (``run`` explains it) instead of being skipped without a word.
        "failOnDataLoss": "true",
        **({"minPartitions": str(settings.kafka_min_partitions)}
           if settings.kafka_min_partitions > 0
           else {"maxRecordsPerPartition": str(settings.kafka_records_per_task)}),
        # Bigger fetches: about 30 % more events/s from the broker on a small machine.
        "kafka.max.partition.fetch.bytes": str(16 << 20),
        "kafka.fetch.max.bytes": str(64 << 20),
    })


def start(
    spark: SparkSession,
    settings: Settings,
    processor: BatchProcessor,
    available_now: bool = False,
    accept_loss: bool = False,
) -> Any:
    """Starts the query; refuses (``CarbonpipeError``) where the stores do not belong together.

    ``accept_loss``: skip offsets the log no longer holds (logged by Spark) instead of failing.
    """
    marker = unfinished_rebuild(processor.store.db)
    if marker is not None:
        raise UserError(
            f"a `carbonpipe stream --rebuild` started at {marker.get('started')} did not finish "
            f"(CARBONPIPE_MONGO_DB={settings.mongo_db}): the hot store, the checkpoint and the "
            "cold store may be half reset, and continuing would count from an incomplete state. "
            "Run `carbonpipe stream --rebuild` again to finish it"
        )
    cp = checkpoint_path(settings)
    if not uri_exists(spark, cp + "/offsets") and processor.state.any_query_id() is not None:
        raise ConfigError(
            f"the hot store (CARBONPIPE_MONGO_DB={settings.mongo_db}) holds results of another "
            f"checkpoint but {cp} is empty: run `carbonpipe stream --rebuild` to replay the log "
            "from the start, or point CARBONPIPE_CHECKPOINT_URI at the old checkpoint"
        )
    raw = (
        spark.readStream.format("kafka")
        .options(**source_options(spark, settings))
        .option("failOnDataLoss", "false" if accept_loss else "true")
        .option("maxOffsetsPerTrigger", str(settings.max_offsets_per_trigger))
        .load()
    )
    writer = raw.writeStream.foreachBatch(processor).option("checkpointLocation", cp)
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.trigger_s} seconds")
    query = writer.queryName("carbonpipe_stream").start()
    processor.query_id = str(query.id)
    processor.query = query
    return query


def run(
    settings: Settings | None = None,
    *,
    once: bool = False,
    rebuild_first: bool = False,
    accept_loss: bool = False,
    max_restarts: int | None = None,
) -> int:
    """Runs until stopped (or, with ``once``, until the log is drained).

    A failed micro-batch (MongoDB down or hung, say) stops the query; it is restarted from the
    checkpoint after a back-off that doubles up to ``stream_retry_max_s``, so the job stays up
    and loses nothing. The count of consecutive failures resets after a successful batch; a
    limit (``stream_max_consecutive_failures``, or ``max_restarts``; 0 = none) ends the job
    with status 1. A refusal (``CarbonpipeError``) or a gap in the log is not retried:
    restarting cannot fix it, so the job stops with the message that says what to do.
    """
    settings = settings or get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    spark = build_session(settings, "carbonpipe-stream")
    store = HotStore(settings.mongo_uri, settings.mongo_db, timeout_s=settings.mongo_timeout_s)
    if rebuild_first:
        rebuild(spark, settings, store)
    stop = {"flag": False}

    def _stop(signum: int, _frame: Any) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    limit = settings.stream_max_consecutive_failures if max_restarts is None else max_restarts
    failures = 0
    while True:
        processor: BatchProcessor | None = None
        exc: BaseException | None = None
        try:
            # Inside the try: MongoDB down at the first start is retried like any outage.
            processor = BatchProcessor(spark, settings, store)
            query = start(spark, settings, processor, available_now=once,
                          accept_loss=accept_loss)  # fmt: skip
            log.info("streaming %s -> %s and %s", settings.metrics_topic, settings.mongo_db,
                     events_path(settings))  # fmt: skip
            while query.isActive and not stop["flag"]:
                query.awaitTermination(1.0)
            if stop["flag"] and query.isActive:
                query.stop()
            exc = query.exception()
        except CarbonpipeError:
            raise
        except Exception as e:
            exc = e
        finally:
            if processor is not None:
                processor.feed.close()
        if processor is not None and processor.last_stats:
            failures = 0  # a batch succeeded since the last start: the budget is whole again
        if exc is None or stop["flag"]:
            return 0
        said = " ".join(str(exc).split())
        found = [said.find(m) for m in ("KAFKA_DATA_LOSS", "Some data may have been lost")]
        cause = min((i for i in found if i >= 0), default=-1)
        if cause >= 0:
            raise UserError(
                f"offsets of {settings.metrics_topic} that this job has not read yet are gone "
                "from the log (deleted by retention, or the topic was deleted and recreated), "
                "so the events in them cannot be counted. Spark said: "
                f"{said[cause : cause + 700]}\nTo go on without them (they stay lost), "
                "run `carbonpipe stream --accept-loss` once; if the topic was recreated, "
                "`carbonpipe stream --rebuild` replays it from its start instead"
            ) from None
        failures += 1
        if limit and failures > limit:
            log.error("stream failed %d times in a row (%s); giving up", failures, exc)
            return 1
        delay = min(settings.stream_retry_initial_s * 2 ** (failures - 1),
                    settings.stream_retry_max_s)  # fmt: skip
        log.error("stream failed (failure %d in a row); restart from checkpoint in %.1f s: %s",
                  failures, delay, exc)  # fmt: skip
        deadline = time.monotonic() + delay
        while not stop["flag"] and time.monotonic() < deadline:
            time.sleep(min(0.5, delay))
        if stop["flag"]:
            return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--once", action="store_true", help="drain the log, then stop")
    parser.add_argument("--rebuild", action="store_true", help="replay from the start")
    parser.add_argument(
        "--accept-loss", action="store_true", help="skip offsets the log no longer holds"
    )
    args = parser.parse_args(argv)
    try:
        return run(once=args.once, rebuild_first=args.rebuild, accept_loss=args.accept_loss)
    except CarbonpipeError as exc:  # spark-submit / python -m: the message, not a traceback
        print(f"carbonpipe stream: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
