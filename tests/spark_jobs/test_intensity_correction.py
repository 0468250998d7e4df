"""Late-arriving intensity (reliability review M6, M10): the correction's arithmetic (pure), the
hot store applying it exactly once, the feed's first read and bounds; and, end to end with the
real Kafka, Spark and MongoDB-compatible server (``integration``, ``fault``):

1. The job starts before ``grid.intensity`` exists: GB events are charged GB's static average
   and flagged. The topic is created and GB's intensity published while the job runs: the job
   picks the topic up (the feed is not empty for the query's lifetime) and corrects the windows
   and the run, with the stream still flowing (another run's events keep batches coming).
2. DE events are charged the fallback; DE's intensity is published while the job is down; the
   next job applies the correction in its first batch and dies after the sinks, before Spark
   commits the batch; the job after it replays that batch and applies nothing twice.
Every expected figure is computed by hand from the events' joules and the published values.
"""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import Settings
from carbonpipe.core.contracts import intensity_key
from carbonpipe.core.timeutil import utc_iso
from carbonpipe.core.versions import newest
from carbonpipe.services.topics import create_topics, topic_specs
from spark_jobs import reference
from spark_jobs.hot_store import HotStore
from spark_jobs.intensity_correction import LateIntensity, SegmentIndex, plan
from spark_jobs.merge import apply_corrections, merge_run, merge_window, run_parts
from spark_jobs.reference import IntensityFeed, Segment, load_fallback_table, slot_rows
from tests.spark_jobs.pipeline_harness import StreamJob, produce, wait_for

W = 1_700_000_100 - 1_700_000_100 % 300  # a window at the start of a 5-minute slot


def part(**kw: Any) -> dict[str, Any]:
    """A window partial as ``fold_windows`` gives it: 4 Wh, 3 of them on GB's fallback."""
    base: dict[str, Any] = dict(
        run_id="r1", user_id="u", model_name="m", host="h", zone="GB", window_start_s=W,
        window_s=60, energy_kwh=0.004, cpu_kwh=0.004, gpu_kwh=0.0, ram_kwh=0.0,
        measured_kwh=0.004, estimated_kwh=0.0, co2_g=0.001 * 100 + 0.003 * 233,
        fallback_kwh=0.003, fallback_co2_g=0.003 * 233, fallback_first_ts_s=W + 10,
        fallback_last_ts_s=W + 50, forecast_kwh=0.0, covered_s=4.0, n_events=4,
        first_ts_s=W + 5, last_ts_s=W + 50, min_seq=0, max_seq=3, sum_cpu_utilization_pct=0.0,
        max_gpu_mem_used_mb=None, max_ram_used_mb=None, ended=0, schedule_decision_id=None,
        intensity_providers=["static", "trace"],
    )  # fmt: skip
    base.update(kw)
    return base


def seg(start: int, end: int, g: float, kind: str = "actual", zone: str = "GB") -> Segment:
    return Segment(zone, start, end, g, "eso", kind)


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


# ---------------------------------------------------------------------- the arithmetic (pure)
def test_a_late_segment_recharges_exactly_the_fallback_energy() -> None:
    window = merge_window(None, part(), 3)
    c = plan(window, SegmentIndex([seg(W - 300, W + 1500, 123.0)]), batch_id=7)
    assert c is not None and (c.kwh, c.charged_g, c.g_per_kwh) == (0.003, 0.003 * 233, 123.0)
    fixed = merge_window(apply_corrections(window, [c], True), {}, 7)
    assert close(fixed["co2_g"], 0.001 * 100 + 0.003 * 123)  # the non-fallback part untouched
    assert fixed["fallback_kwh"] == 0.0 and fixed["fallback_co2_g"] == 0.0
    assert fixed["fallback_first_ts_s"] is None and fixed["fallback_last_ts_s"] is None
    assert fixed["intensity_providers"] == ["eso", "trace"]  # the fallback label went
    assert fixed["energy_kwh"] == 0.004 and fixed["n_events"] == 4  # energy never moves
    assert close(fixed["mean_intensity_g_per_kwh"], (0.1 + 0.369) / 0.004)
    assert fixed["late_intensity"] == [c.record()] and fixed["_id"].endswith("|b7")
    assert plan(fixed, SegmentIndex([seg(W - 300, W + 1500, 123.0)]), 8) is None  # once


def test_what_the_window_was_charged_is_replaced_whatever_fallback_applied() -> None:
    """A zone missing from the table was charged WORLD's average: the record says so."""
    window = merge_window(None, part(zone="XX", fallback_co2_g=0.003 * 436,
                                     co2_g=0.001 * 100 + 0.003 * 436,
                                     intensity_providers=["static:WORLD", "trace"]), 3)  # fmt: skip
    c = plan(window, SegmentIndex([seg(W, W + 1800, 50.0, "forecast", zone="XX")]), 4)
    assert c is not None
    fixed = apply_corrections(window, [c], True)
    assert close(fixed["co2_g"], 0.001 * 100 + 0.003 * 50)
    assert fixed["forecast_kwh"] == 0.003 and fixed["intensity_providers"] == ["eso", "trace"]


def test_no_correction_where_no_single_segment_holds_the_fallback_events() -> None:
    window = merge_window(None, part(), 3)
    split = SegmentIndex([seg(W - 300, W + 30, 100.0), seg(W + 30, W + 300, 300.0)])
    assert plan(window, split, 4) is None  # straddles a boundary inside the window: kept
    assert plan(window, SegmentIndex([seg(W, W + 50, 100.0)]), 4) is None  # ends too soon
    assert plan(window, SegmentIndex([seg(W, W + 300, 100.0, "fallback")]), 4) is None
    assert plan(window, SegmentIndex([seg(W, W + 300, 100.0, zone="DE")]), 4) is None
    early = merge_window(None, part(fallback_last_ts_s=W + 20), 3)  # all before the boundary
    c = plan(early, split, 4)
    assert c is not None and c.g_per_kwh == 100.0


def test_a_run_sums_its_windows_corrections_and_keeps_what_is_left() -> None:
    w1 = merge_window(None, part(), 3)
    w2 = merge_window(None, part(window_start_s=W + 60, fallback_first_ts_s=W + 70,
                                 fallback_last_ts_s=W + 110), 3)  # fmt: skip
    w3 = merge_window(None, part(window_start_s=W + 1800, fallback_first_ts_s=W + 1810,
                                 fallback_last_ts_s=W + 1850), 3)  # fmt: skip
    run = merge_run(None, run_parts([w1, w2, w3])["r1"], 3)
    index = SegmentIndex([seg(W, W + 900, 123.0)])
    cs = [c for w in (w1, w2, w3) if (c := plan(w, index, 4)) is not None]
    assert [c.key for c in cs] == [w1["key"], w2["key"]]  # w3: no segment yet
    fixed = apply_corrections(run, cs, False)
    assert close(fixed["co2_g"], 3 * 0.001 * 100 + 2 * 0.003 * 123 + 0.003 * 233)
    assert close(fixed["fallback_kwh"], 0.003) and "static" in fixed["intensity_providers"]
    c3 = plan(w3, SegmentIndex([seg(W + 1800, W + 2700, 200.0)]), 5)
    assert c3 is not None
    done = apply_corrections(fixed, [c3], False)
    assert done["fallback_kwh"] == 0.0 and done["intensity_providers"] == ["eso", "trace"]
    assert close(done["co2_g"], 3 * 0.001 * 100 + 2 * 0.003 * 123 + 0.003 * 200)
    assert "late_intensity" not in done  # runs do not collect one record per window


# ------------------------------------------------------- the hot store: exactly once (fake db)
def _match(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    for field, cond in query.items():
        v = doc.get(field)
        if isinstance(cond, dict):
            if "$in" in cond and v not in cond["$in"]:
                return False
            if "$gt" in cond and not (v is not None and v > cond["$gt"]):
                return False
        elif v != cond:
            return False
    return True


class FakeCollection:
    """The few pymongo calls the hot store makes, in memory (insert-only, duplicate ids fail)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    def create_index(self, *_: Any) -> None:
        pass

    def find(self, query: dict[str, Any] | None = None, _fields: Any = None) -> list[Any]:
        return [dict(d) for d in self.docs.values() if _match(d, query or {})]

    def find_one(self, query: dict[str, Any], _fields: Any = None, sort: Any = None) -> Any:
        found = sorted(self.find(query), key=lambda d: d[sort[0][0]]) if sort else self.find(query)
        return (found[-1] if sort and sort[0][1] < 0 else found[0]) if found else None

    def insert_many(self, docs: list[dict[str, Any]], ordered: bool = True) -> None:
        from pymongo.errors import BulkWriteError

        errors = []
        for d in docs:
            if d["_id"] in self.docs:
                errors.append({"code": 11000})
            else:
                self.docs[d["_id"]] = dict(d)
        if errors:
            raise BulkWriteError({"writeErrors": errors})

    def delete_many(self, query: dict[str, Any]) -> None:
        for d in self.find(query):
            del self.docs[d["_id"]]

    def bulk_write(self, ops: list[Any], ordered: bool = True) -> None:
        for op in ops:  # ReplaceOne(upsert=True) by _id: the read models' only write
            doc = op._doc
            self.docs[doc["_id"]] = dict(doc)


class FakeDB(dict[str, FakeCollection]):
    def __missing__(self, name: str) -> FakeCollection:
        self[name] = FakeCollection()
        return self[name]


def store_on(db: FakeDB, late: LateIntensity) -> HotStore:
    store = HotStore("mongodb://127.0.0.1:1", "unused")  # pymongo connects lazily: never here
    store.db = db  # type: ignore[assignment]
    store.late = late
    return store


def fresh(segments: list[Segment], horizon: float | None = None) -> LateIntensity:
    late = LateIntensity()
    late.use(segments)
    late.horizon_s = horizon
    return late


def newest_of(db: FakeDB, coll: str) -> dict[str, dict[str, Any]]:
    return {d["key"]: d for d in newest(db[coll].find())}


def test_the_hot_store_applies_a_correction_once_even_when_its_batch_is_replayed() -> None:
    db = FakeDB()
    late = fresh([])
    a = store_on(db, late)
    a.write_batch(0, [part(), part(window_start_s=W + 60, fallback_first_ts_s=W + 70,
                                   fallback_last_ts_s=W + 110)], {"valid": 8})  # fmt: skip
    assert set(late.pending) == set(newest_of(db, "windows"))  # both wait for GB's intensity
    # GB's intensity arrives; batch 1 brings a new fallback-free event for the first window.
    late.use([seg(W - 300, W + 1500, 123.0)])
    more = part(energy_kwh=0.001, cpu_kwh=0.001, measured_kwh=0.001, co2_g=0.123,
                fallback_kwh=0.0, fallback_co2_g=0.0, fallback_first_ts_s=None,
                fallback_last_ts_s=None, n_events=1, intensity_providers=["eso"])  # fmt: skip
    a.write_batch(1, [more], {"valid": 1})
    assert a.corrected_last_batch == 2 and not late.pending

    def check() -> None:
        w = newest_of(db, "windows")
        first, second = (w[k] for k in sorted(w))
        assert close(first["co2_g"], 0.001 * 100 + 0.003 * 123 + 0.123)
        assert close(second["co2_g"], 0.001 * 100 + 0.003 * 123)
        assert first["n_events"] == 5 and first["batch_id"] == second["batch_id"] == 1
        (run,) = newest_of(db, "runs").values()
        assert close(run["co2_g"], first["co2_g"] + second["co2_g"]) and run["n_events"] == 9
        for d in (first, second, run):
            assert d["fallback_kwh"] == 0.0 and d["intensity_providers"] == ["eso", "trace"]

    check()
    # A new process replays batch 1 (not committed): nothing is applied twice, even with a
    # different value for GB in the feed by then (the window's record decides the run's total).
    b = store_on(db, fresh([seg(W - 300, W + 1500, 999.0)], horizon=W - 900))
    db["run_versions"].docs = {
        k: v for k, v in db["run_versions"].docs.items() if not k.endswith("|b1")
    }
    b.write_batch(1, [more], {"valid": 1})
    assert b.corrected_last_batch == 2  # read back from the windows' records
    check()
    b.write_batch(2, [], {})
    check()


def test_windows_behind_the_watermark_stop_waiting() -> None:
    late = fresh([seg(W - 300, W + 1500, 123.0)], horizon=W + 61)
    late.track([merge_window(None, part(), 0)])
    assert late.candidates() == [] and late.pending == {}


# --------------------------------------------------------------- the feed: first read, bounds
@dataclass
class Msg:
    value: bytes


class FakeConsumer:
    """kafka-python's consumer as the feed uses it; ``empty_polls`` first polls return nothing
    (the offset reset and the first fetch not done yet: the startup race of M6)."""

    def __init__(self, topics: dict[str, list[bytes]], empty_polls: int = 0) -> None:
        self.topics, self.empty_polls, self.pos = topics, empty_polls, {}  # type: ignore[var-annotated]

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0} if topic in self.topics else set()

    def assign(self, tps: list[Any]) -> None:
        self.pos = {tp: 0 for tp in tps}

    def seek_to_beginning(self, *tps: Any) -> None:
        for tp in tps:
            self.pos[tp] = 0

    def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: len(self.topics[tp.topic]) for tp in tps}

    def position(self, tp: Any) -> int:
        return int(self.pos[tp])

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, list[Msg]]:
        if self.empty_polls:
            self.empty_polls -= 1
            return {}
        out = {}
        for tp, p in self.pos.items():
            msgs = self.topics[tp.topic][p : p + max_records]
            self.pos[tp] = p + len(msgs)
            out[tp] = [Msg(m) for m in msgs]
        return out

    def close(self) -> None:
        pass


def rec(zone: str, start: int, end: int, g: float) -> bytes:
    iso = lambda s: utc_iso(datetime.fromtimestamp(s, timezone.utc))  # noqa: E731
    return json.dumps({"zone": zone, "start": iso(start), "end": iso(end),
                       "carbon_intensity_g_per_kwh": g, "provider": "eso"}).encode()  # fmt: skip


def feed_on(consumer: FakeConsumer, topic: str = "grid.intensity") -> IntensityFeed:
    settings = Settings().model_copy(update={"intensity_topic": topic})
    return IntensityFeed(settings, connect=lambda: consumer)


def test_the_first_read_goes_on_to_the_end_offsets_after_empty_polls() -> None:
    consumer = FakeConsumer({"grid.intensity": [rec("GB", W, W + 1800, 100.0)]}, empty_polls=3)
    feed = feed_on(consumer)
    assert feed.refresh() and [s.g_per_kwh for s in feed.segments()] == [100.0]


def test_a_topic_missing_at_start_is_read_once_it_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(IntensityFeed, "FIRST_READ_S", 0.2)
    consumer = FakeConsumer({})
    feed = feed_on(consumer)
    assert not feed.refresh() and feed.segments() == []  # waited, then went on: fallback
    consumer.topics["grid.intensity"] = [rec("GB", W, W + 1800, 100.0)]
    assert feed.refresh(min_interval_s=0) and len(feed.segments()) == 1
    assert [r.zone for r in feed.take_unpublished()] == []  # 2023: not on the dashboard


def test_a_year_of_twenty_zones_costs_only_what_the_lateness_window_can_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """M10: the feed keeps what events after the watermark can use, and a change re-folds
    only its zone (the year is read once, at start)."""
    end = W - W % 3600
    zones = [f"Z{i}" for i in range(20)]
    hours = range(end - 365 * 86_400, end, 3600)
    iso = {t: utc_iso(datetime.fromtimestamp(t, timezone.utc)) for t in (*hours, end)}
    year = [b'{"zone": "%s", "start": "%s", "end": "%s", "carbon_intensity_g_per_kwh": %d}'
            % (z.encode(), iso[t].encode(), iso[t + 3600].encode(), 100 + i)
            for i, z in enumerate(zones) for t in hours]  # fmt: skip
    consumer = FakeConsumer({"grid.intensity": year})
    feed = feed_on(consumer)
    horizon = end - 1800
    assert feed.refresh(horizon_s=horizon)
    assert len(feed.records()) == 20  # the last hour of each zone
    assert len(slot_rows(feed.segments())) == 20 * 12
    folded: list[str] = []
    real = reference.to_segments
    monkeypatch.setattr(reference, "to_segments",
                        lambda recs: folded.extend({r.zone for r in recs}) or real(recs))  # type: ignore[func-returns-value]  # fmt: skip
    consumer.topics["grid.intensity"].append(rec("Z3", end, end + 3600, 1.0))
    assert feed.refresh(min_interval_s=0, horizon_s=horizon) and len(feed.segments()) == 21
    assert folded == ["Z3"]
    feed.refresh(min_interval_s=0, horizon_s=end + 1)  # the watermark moves on
    assert len(feed.records()) == 1


# ---------------------------------------------------------------------- end to end (real stack)
T0 = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
T0_S = int(T0.timestamp())
KWH = 3600.0 / 3.6e6  # every event: 3600 J of CPU
GB_REAL, DE_REAL = 123.0, 456.0


def event(run_id: str, zone: str, seq: int, t: int) -> dict[str, Any]:
    return {
        "timestamp": utc_iso(T0 + timedelta(seconds=t)), "run_id": run_id, "user_id": "u",
        "model_name": "m", "host": f"h-{run_id}", "region": zone, "interval_s": 1, "seq": seq,
        "schema_version": 1, "cpu_energy_j": 3600.0, "cpu_method": "measured",
    }  # fmt: skip


def intensity(zone: str, value: float) -> tuple[str, dict[str, Any]]:
    return intensity_key(zone, T0), {
        "zone": zone, "start": utc_iso(T0), "end": utc_iso(T0 + timedelta(hours=2)),
        "carbon_intensity_g_per_kwh": value, "provider": "late-test", "kind": "actual",
    }  # fmt: skip


# Two windows per run: T0 (3 events) and T0+60 (1 event).
TIMES = (10, 20, 40, 70)
GB_EVENTS = [event("late-gb", "GB", i, t) for i, t in enumerate(TIMES)]
DE_EVENTS = [event("late-de", "DE", i, t) for i, t in enumerate(TIMES)]
EXPECTED_N = {T0_S: 3, T0_S + 60: 1}


def docs(db: Any, coll: str, run_id: str) -> list[dict[str, Any]]:
    return newest(db[coll].find({"run_id": run_id}))


def charged(db: Any, run_id: str, g_per_kwh: float, fallback: bool) -> bool:
    """Whether the run's windows and run document hold exactly its events at ``g_per_kwh``,
    all of it on fallback (``fallback``) or none."""
    windows = {d["window_start_s"]: d for d in docs(db, "windows", run_id)}
    runs = docs(db, "runs", run_id)
    if {k: d["n_events"] for k, d in windows.items()} != EXPECTED_N or len(runs) != 1:
        return False
    for d in [*windows.values(), *runs]:
        kwh = d["n_events"] * KWH
        if not (close(d["energy_kwh"], kwh) and close(d["co2_g"], kwh * g_per_kwh)):
            return False
        if fallback != (d["fallback_kwh"] > 0) or (fallback and not close(d["fallback_kwh"], kwh)):
            return False
    return True


def assert_corrected(db: Any, run_id: str, g_per_kwh: float) -> None:
    assert charged(db, run_id, g_per_kwh, fallback=False), docs(db, "windows", run_id)
    for d in [*docs(db, "windows", run_id), *docs(db, "runs", run_id)]:
        assert d["fallback_kwh"] == 0.0 and d["fallback_co2_g"] == 0.0, d
        assert d["intensity_providers"] == ["late-test"], d
        assert close(d["mean_intensity_g_per_kwh"], g_per_kwh), d
    for w in docs(db, "windows", run_id):  # provenance: one correction, recorded once
        assert [r["g_per_kwh"] for r in w["late_intensity"]] == [g_per_kwh], w


@pytest.fixture()
def late(unique_topics: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings whose intensity topic does not exist yet (removed again at the end)."""
    s = unique_topics.model_copy(update={
        "intensity_topic": f"{unique_topics.intensity_topic}.late",
        "cold_store_uri": str(tmp_path / "cold"),
        "checkpoint_uri": str(tmp_path / "checkpoints"),
        "trigger_s": 1.0,
    })  # fmt: skip
    yield s
    from kafka.admin import KafkaAdminClient

    with contextlib.suppress(Exception):
        admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap_servers)
        try:
            admin.delete_topics([s.intensity_topic])
        finally:
            admin.close()


@pytest.mark.integration
@pytest.mark.fault
def test_late_intensity_corrects_windows_and_runs_exactly_once(
    late: Settings, tmp_path: Path
) -> None:
    s = late
    from pymongo import MongoClient

    db: Any = MongoClient(s.mongo_uri, tz_aware=True)[s.mongo_db]
    fb = load_fallback_table()
    sent = [0]

    def tick() -> None:  # another run's events: the stream keeps flowing
        i = sent[0]
        produce(s, s.metrics_topic, [("tick", event("tick", "FR", i, 100 + i % 150))])
        sent[0] += 1

    def ticks_done() -> bool:
        return sum(d["n_events"] for d in docs(db, "runs", "tick")) == sent[0]

    produce(s, s.metrics_topic, [(e["run_id"], e) for e in GB_EVENTS])
    job = StreamJob(s, tmp_path / "job1.log")
    try:
        wait_for("GB charged its fallback", lambda: charged(db, "late-gb", fb["GB"][0], True), job)
        create_topics(s, {s.intensity_topic: topic_specs(s)[s.intensity_topic]})
        produce(s, s.intensity_topic, [intensity("GB", GB_REAL)])

        def corrected() -> bool:
            tick()
            return charged(db, "late-gb", GB_REAL, fallback=False)

        wait_for("GB corrected by the running job", corrected, job, timeout_s=300)
        assert_corrected(db, "late-gb", GB_REAL)
        # 2. DE: charged the fallback by this job, its intensity published while it is down.
        produce(s, s.metrics_topic, [(e["run_id"], e) for e in DE_EVENTS])
        wait_for("DE charged its fallback", lambda: charged(db, "late-de", fb["DE"][0], True), job)
    finally:
        job.stop()
    produce(s, s.intensity_topic, [intensity("DE", DE_REAL)])
    tick()
    states = db["job_state"].count_documents({})
    crashing = StreamJob(s, tmp_path / "job2.log", CARBONPIPE_FAULT_EXIT_AT="after_mongo")
    wait_for("the crashing job to exit", lambda: not crashing.alive(), None, timeout_s=300)
    assert crashing.proc.returncode == 137, crashing.tail()
    assert db["job_state"].count_documents({}) == states  # died before recording the batch
    assert_corrected(db, "late-de", DE_REAL)  # its sinks hold the correction

    tick()  # a batch after the one replayed
    job = StreamJob(s, tmp_path / "job3.log")
    try:
        wait_for("the replayed batch and the next one", ticks_done, job)
        assert db["job_state"].count_documents({}) > states
        assert_corrected(db, "late-de", DE_REAL)
        assert_corrected(db, "late-gb", GB_REAL)
    finally:
        job.stop(signal.SIGTERM)
