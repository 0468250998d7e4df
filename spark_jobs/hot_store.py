"""MongoDB hot store: windows, runs and pipeline counters, written idempotently.

Documents are versioned and written insert-only: the version a micro-batch writes for a key has
``_id = key|b<batch>`` and carries the cumulative totals (the previous version merged with the
batch's partial). Why:
- idempotent: a batch replayed after a crash (Spark re-runs the last batch it did not commit)
  finds its own ``_id`` already there (duplicate key, ignored) and merges from the same base,
  so nothing is counted twice;
- fast on both servers: the embedded FerretDB (SQLite) scans the table for every update, but
  inserts a batch of documents in one transaction; MongoDB is happy either way;
- crash-safe: a version is one atomic insert; superseded versions are deleted later, always
  keeping the two newest per key, so the base of a replayed batch is still there.
Readers take the newest version per key (``carbonpipe.core.versions.newest``). The job is the
only writer of its database; the driver caches the versions of active keys (``Versions``).
How documents merge is ``spark_jobs.merge`` (pure); this module is the MongoDB edge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from carbonpipe.core.mongo import client_options, mongo_client  # noqa: F401 (re-exported)
from carbonpipe.core.versions import (
    DAYS,
    MONTHS,
    READ_MODELS,
    RUN_INDEX,
    RUN_VERSIONS,
    RUNS,
    SERIES,
    SERIES_FIELDS,
    TOTALS,
    series_id,
)
from spark_jobs import rollups
from spark_jobs.intensity_correction import Correction, LateIntensity, per_run, plan
from spark_jobs.merge import (
    apply_corrections,
    merge_counts,
    merge_run,
    merge_window,
    run_parts,
    seq_ranges,
    window_id,
)

log = logging.getLogger(__name__)


_WINDOW_IDENTITY = ("run_id", "user_id", "model_name", "host", "zone", "window_start_s", "tags")


class Versions:
    """Versions per key of one collection (newest last), as written to MongoDB: a bounded cache.

    A key is loaded from MongoDB the first time a batch needs it and dropped again once no
    batch touched it for ``IDLE_BATCHES`` batches, so the driver's memory follows the active
    runs and windows, not the history; a late partial for a window closed long ago loads that
    window's versions again and merges into them. Loading gives the same base a batch saw the
    first time (versions are insert-only and the two newest are kept), so a replayed batch
    still finds its own version there and is not applied twice.
    """

    KEEP = 2
    IDLE_BATCHES = 30

    def __init__(self) -> None:
        self.by_key: dict[str, list[dict[str, Any]]] = {}
        self.garbage: list[str] = []
        self._touched: dict[str, int] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.by_key

    def __len__(self) -> int:
        return len(self.by_key)

    def add(self, doc: dict[str, Any]) -> None:
        versions = self.by_key.setdefault(doc["key"], [])
        if any(v["batch_id"] == doc["batch_id"] for v in versions):
            return
        versions.append(doc)
        versions.sort(key=lambda v: v["batch_id"])
        while len(versions) > self.KEEP:
            self.garbage.append(versions.pop(0)["_id"])

    def loaded(self, keys: Iterable[str], docs: Iterable[dict[str, Any]]) -> None:
        """``docs``: every version MongoDB holds of ``keys`` (a key without any is new)."""
        for key in keys:
            self.by_key.setdefault(key, [])
        for d in docs:
            self.add(d)

    def at(self, key: str, batch_id: int) -> dict[str, Any] | None:
        """The version ``batch_id`` wrote of ``key``, if it is here."""
        return next((v for v in self.by_key.get(key, []) if v["batch_id"] == batch_id), None)

    def base(self, key: str, batch_id: int) -> tuple[dict[str, Any] | None, bool]:
        """(newest version before ``batch_id``, whether ``batch_id`` was already applied)."""
        self._touched[key] = batch_id
        versions = self.by_key.get(key, [])
        applied = any(v["batch_id"] == batch_id for v in versions)
        earlier = [v for v in versions if v["batch_id"] < batch_id]
        return (earlier[-1] if earlier else None), applied

    def evict_idle(self, batch_id: int) -> list[dict[str, Any]]:
        """Drops keys no batch touched since ``batch_id - IDLE_BATCHES``; returns their newest
        versions (the caller remembers how far back MongoDB may hold a key)."""
        horizon = batch_id - self.IDLE_BATCHES
        idle = [k for k, b in self._touched.items() if b < horizon]
        gone = []
        for key in idle:
            del self._touched[key]
            versions = self.by_key.pop(key, [])
            if versions:
                gone.append(versions[-1])
        return gone


class Current:
    """Read-model documents (``runs``, ``days``, ``totals``) by ``_id``: a bounded cache like
    ``Versions`` (keys idle for ``Versions.IDLE_BATCHES`` batches are dropped and read again
    by ``_id`` when a batch needs them)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any] | None] = {}
        self._touched: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.docs)

    def touch(self, key: str, batch_id: int) -> dict[str, Any] | None:
        self._touched[key] = batch_id
        return self.docs.get(key)

    def evict_idle(self, batch_id: int) -> None:
        horizon = batch_id - Versions.IDLE_BATCHES
        for key in [k for k, b in self._touched.items() if b < horizon]:
            del self._touched[key]
            self.docs.pop(key, None)


# Versioned documents: the logical name -> the collection. Runs' versions live beside the
# current ``runs`` readers use (``carbonpipe.core.versions``).
VERSIONED = {"windows": "windows", "runs": RUN_VERSIONS, "stats": "stats"}


class HotStore:
    """The pymongo edge. Versioned: windows, run_versions, stats; read models: runs, days,
    months, totals, series, run_index (``spark_jobs.rollups``); also intensity and job_state."""

    GC_EVERY = 20  # batches between deletions of superseded versions
    CHUNK = 2000  # documents per insert_many
    UPSERT_CHUNK = 25  # replacements per bulk_write (see ``_upsert``)

    def __init__(self, uri: str, db: str, write_threads: int = 2, timeout_s: float = 30.0) -> None:
        self._client: Any = mongo_client(uri, timeout_s)
        self.db = self._client[db]
        # Chunks go to the server over this many connections at once: the embedded FerretDB
        # spends most of an insert converting documents, which runs in parallel (measured:
        # 16,800 window documents in 4.6 s over one connection, 3.0 s over two).
        self.write_threads = max(1, write_threads)
        self._versions = {c: Versions() for c in VERSIONED}
        self._current = {c: Current() for c in READ_MODELS}
        self._batches = 0
        # Windows starting after this may not be in MongoDB unless this process wrote them
        # (and then they are cached until evicted): a new live window costs no query.
        self._stored_windows_until_s: float | None = None
        self.loaded_last_batch = 0  # keys the last batch had to read from MongoDB
        # Set by the job: windows charged the fallback are corrected in the batch that first
        # finds their intensity (``spark_jobs.intensity_correction``).
        self.late: LateIntensity | None = None
        self.corrected_last_batch = 0
        self.fault: Any = None  # the job's test-only crash hook (``stream.fault``)
        self._intensity_trimmed = float("-inf")

    def _prepare(self) -> None:
        """Once per process: indexes, and how far back MongoDB holds windows already."""
        for coll in VERSIONED.values():
            self.db[coll].create_index("key")
        for coll in ("windows", RUN_VERSIONS):
            self.db[coll].create_index("run_id")
        # For servers that use them (MongoDB; FerretDB answers ``_id`` lookups, which is what
        # the readers' paths are made of): BI tools filter the current runs this way.
        for field in ("start", "user_id", "model_name"):
            self.db[RUNS].create_index(field)
        newest_window = self.db["windows"].find_one({}, sort=[("window_start_s", -1)])
        self._stored_windows_until_s = newest_window["window_start_s"] if newest_window else -1
        self._months_from_days()

    MONTHS_MIGRATION = "months_from_days"

    def _months_from_days(self) -> None:
        """Once per store: a store the job wrote before it kept ``months`` gets them summed
        from its ``days`` (otherwise a month's bucket would hold only the batches since the
        upgrade). Done again in full if a crash cut it short: the marker is written last."""
        if self.db["migrations"].find_one({"_id": self.MONTHS_MIGRATION}) is not None:
            return
        months = rollups.months_from_days(self.db[DAYS].find())
        self._upsert(MONTHS, months)
        self._upsert("migrations", [{"_id": self.MONTHS_MIGRATION, "months": len(months),
                                     "at": datetime.now(timezone.utc)}])  # fmt: skip
        if months:
            log.info("months: %d month buckets summed from the day buckets", len(months))

    def _ensure(
        self, coll: str, keys: Iterable[str], maybe_stored: Any = None, batch_id: int | None = None
    ) -> int:
        """Loads the versions of ``keys`` not in the cache (those ``maybe_stored`` says MongoDB
        may hold; the others are new). Returns how many keys were read from MongoDB."""
        versions = self._versions[coll]
        missing = [k for k in keys if k not in versions]
        ask = [k for k in missing if maybe_stored is None or maybe_stored(k)]
        new = [k for k in missing if maybe_stored is not None and not maybe_stored(k)]
        versions.loaded(new, [])
        if coll == "runs" and batch_id is not None:
            versions.loaded(ask, self._run_versions_by_id(ask, batch_id))
            return len(ask)
        for i in range(0, len(ask), 5000):
            chunk = ask[i : i + 5000]
            versions.loaded(chunk, self.db[VERSIONED[coll]].find({"key": {"$in": chunk}}))
        return len(ask)

    def _run_versions_by_id(self, runs: list[str], batch_id: int) -> list[dict[str, Any]]:
        """The stored versions of ``runs``, by ``_id`` (an index search; a ``key`` filter is a
        scan of every version on FerretDB). The current ``runs`` document names the newest
        version and the one before it (``batch_id``, ``prev_batch_id``: the two kept); a
        version of ``batch_id`` itself may exist without it (a crash inside the batch's MongoDB
        write, before the read models: only the batch being replayed can be half written)."""
        out = []
        coll = self.db[RUN_VERSIONS]
        for run in runs:
            cur = self.db[RUNS].find_one({"_id": run}, {"batch_id": 1, "prev_batch_id": 1})
            if cur is not None and "prev_batch_id" not in cur:  # written before this field
                out.extend(coll.find({"key": run}))
                continue
            ids = {f"{run}|b{batch_id}"}
            for b in (cur or {}).get("batch_id"), (cur or {}).get("prev_batch_id"):
                if b is not None:
                    ids.add(f"{run}|b{b}")
            out.extend(d for i in sorted(ids) if (d := coll.find_one({"_id": i})) is not None)
        return out

    def _insert(self, coll: str, docs: list[dict[str, Any]]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from pymongo.errors import BulkWriteError

        def one(chunk: list[dict[str, Any]]) -> None:
            try:
                self.db[coll].insert_many(chunk, ordered=False)
            except BulkWriteError as exc:  # duplicate key = already written by this batch
                other = [e for e in exc.details.get("writeErrors", []) if e.get("code") != 11000]
                if other:
                    raise

        chunks = [docs[i : i + self.CHUNK] for i in range(0, len(docs), self.CHUNK)]
        if len(chunks) <= 1 or self.write_threads == 1:
            for chunk in chunks:
                one(chunk)
            return
        with ThreadPoolExecutor(self.write_threads) as pool:
            for _ in pool.map(one, chunks):  # re-raises the first failure
                pass

    def _apply(
        self, coll: str, parts: Mapping[str, Mapping[str, Any]], merge: Any, batch_id: int
    ) -> int:
        versions = self._versions[coll]
        new = []
        for key, part in parts.items():
            base, applied = versions.base(key, batch_id)
            if applied:
                continue
            new.append(merge(base, part, batch_id))
        self._insert(VERSIONED[coll], new)
        for doc in new:
            versions.add(doc)
        return len(new)

    def counted_ranges(
        self, pairs: Iterable[tuple[str, str]], batch_id: int
    ) -> dict[tuple[str, str], list[tuple[int, int]]]:
        """Seq ranges counted before ``batch_id`` for each (host, run_id): what a batch's events
        are checked against (``spark_jobs.dedupe``). Loads the runs' documents if needed."""
        if self._stored_windows_until_s is None:
            self._prepare()
        pairs = list(pairs)
        self._ensure("runs", {run for _, run in pairs}, batch_id=batch_id)
        out = {}
        for host, run in pairs:
            base, _ = self._versions["runs"].base(run, batch_id)
            out[(host, run)] = seq_ranges(base).get(host, [])
        return out

    def write_batch(
        self,
        batch_id: int,
        windows: list[dict[str, Any]],
        counts: dict[str, int],
        run_extras: Mapping[str, Mapping[str, Any]] | None = None,
        progress: Mapping[str, Any] | None = None,
    ) -> int:
        """Merges one micro-batch's window partials into windows and runs, and its counts into
        the pipeline stats; returns the number of window versions written. ``run_extras`` per
        run: ``new_seq_ranges`` {host: ranges}, ``duplicates``, ``dead_letters`` {reason: n}
        (a run with dead letters only gets a version too). ``progress``: the batch's time and
        duration for the pipeline stats (``merge.merge_counts``)."""
        if self._stored_windows_until_s is None:
            self._prepare()
        by_window = {window_id(w): w for w in windows}
        start_of = {k: int(w["window_start_s"]) for k, w in by_window.items()}
        until = self._stored_windows_until_s
        self.loaded_last_batch = self._ensure(
            "windows", by_window, lambda k: start_of[k] <= (until if until is not None else -1)
        )
        corrections, run_ids = self._plan_corrections(batch_id)
        self.corrected_last_batch = len(corrections)
        parts: dict[str, Mapping[str, Any]] = {k: {} for k in corrections}
        parts.update(by_window)
        runs = run_parts(windows)
        for run_id, extra in (run_extras or {}).items():
            runs.setdefault(run_id, {"run_id": run_id}).update(extra)
        for run_id, ids in run_ids.items():
            runs.setdefault(run_id, dict(ids))
        self.loaded_last_batch += self._ensure("runs", runs, batch_id=batch_id)
        self._ensure("stats", ["pipeline"])
        by_run = per_run(corrections.values())

        def window(base: dict[str, Any] | None, part: Mapping[str, Any], b: int) -> Any:
            c = corrections.get(base["key"]) if base is not None else None
            if base is not None and c is not None:
                base = apply_corrections(base, [c], True)
            return merge_window(base, part, b)

        def run(base: dict[str, Any] | None, part: Mapping[str, Any], b: int) -> Any:
            cs = by_run.get(part["run_id"])
            if base is not None and cs:
                base = apply_corrections(base, cs, False)
            return merge_run(base, part, b)

        n = self._apply("windows", parts, window, batch_id)
        self._apply("runs", runs, run, batch_id)
        self._apply("stats", {"pipeline": counts},
                    lambda base, c, b: merge_counts(base, c, b, progress), batch_id)
        if self.fault is not None:
            self.fault("in_mongo")  # versions written, read models not yet
        wv = self._versions["windows"]
        fixes = [
            {**{k: doc.get(k) for k in _WINDOW_IDENTITY}, **c.delta()}
            for key, c in corrections.items()
            if (doc := wv.at(key, batch_id)) is not None
        ]
        self._write_read_models(batch_id, [*windows, *fixes], list(runs), list(parts))
        if self.late is not None:
            wv = self._versions["windows"]
            self.late.track(v for k in parts if (v := wv.at(k, batch_id)) is not None)
        for coll in ("windows", "runs"):
            for doc in self._versions[coll].evict_idle(batch_id):
                if coll == "windows":  # MongoDB holds it; a later partial must look it up
                    self._stored_windows_until_s = max(
                        self._stored_windows_until_s or -1, doc["window_start_s"]
                    )
        self._batches += 1
        if self._batches % self.GC_EVERY == 0:
            self.collect_garbage()
        return n

    def _write_read_models(
        self,
        batch_id: int,
        rows: list[Mapping[str, Any]],
        run_ids: list[str],
        window_keys: list[str],
    ) -> None:
        """The readers' documents after this batch (``spark_jobs.rollups``): each touched
        run's current document, the buckets of the days the batch changed and the totals of
        the dimension values it changed. Written after the versions, so a crash in between
        is repaired by the replay of the batch; a bucket or total already at ``batch_id`` is
        not applied again."""
        rv = self._versions["runs"]
        now = {r: d for r in run_ids if (d := rv.at(r, batch_id)) is not None}
        before = {r: rv.base(r, batch_id)[0] for r in now}
        # A run counts once, in the batch that counts its first event (not its first dead letter).
        new_runs = {r: d for r, d in now.items()
                    if d.get("first_ts_s") is not None
                    and (before[r] or {}).get("first_ts_s") is None}  # fmt: skip
        day_deltas = rollups.deltas(rows, new_runs)
        entries: dict[str, dict[str, Any]] = {}  # hour -> run -> index entry (None: moved)
        for run_id, doc in now.items():
            if doc.get("first_ts_s") is None:
                continue
            hour = rollups.hour_of(doc["first_ts_s"])
            old = before[run_id] or {}
            old_hour = rollups.hour_of(old["first_ts_s"]) if old.get("first_ts_s") else None
            if old_hour == hour:
                continue  # indexed already
            entries.setdefault(hour, {})[run_id] = doc
            if old_hour is not None:
                entries.setdefault(old_hour, {})[run_id] = None
        days = self._advance(DAYS, day_deltas, batch_id, rollups.merge_day)
        months = self._advance(MONTHS, rollups.by_month(day_deltas), batch_id,
                               rollups.merge_month)  # fmt: skip
        index = self._advance(RUN_INDEX, entries, batch_id, rollups.merge_index)
        by_key = {rollups.total_id(k): days for k, days in rollups.per_key(day_deltas).items()}
        totals = self._advance(TOTALS, by_key, batch_id, rollups.merge_total)
        current = [{**{k: v for k, v in d.items() if k != "_id"}, "_id": r} for r, d in now.items()]
        series = self._series(batch_id, window_keys, {r for r, b in before.items() if b is None})
        for coll, docs in (
            (RUNS, current),
            (DAYS, days),
            (MONTHS, months),
            (TOTALS, totals),
            (SERIES, series),
            (RUN_INDEX, index),
        ):
            self._upsert(coll, docs)
            for d in docs:
                self._current[coll].docs[d["_id"]] = d
                self._current[coll].touch(d["_id"], batch_id)
            self._current[coll].evict_idle(batch_id)

    def _advance(
        self,
        coll: str,
        changes: Mapping[str, Any],
        batch_id: int,
        merge: Callable[[dict[str, Any] | None, str, Any, int], dict[str, Any]],
        new: Iterable[str] = (),
    ) -> list[dict[str, Any]]:
        """The read-model documents of ``coll`` after this batch: each change merged into its
        document (read by ``_id`` if not cached; ``new``: known to have none), except where
        the document already holds this batch (a replay: applied once)."""
        self._load_current(coll, changes, batch_id, new)
        out = []
        for id_, change in sorted(changes.items()):
            base = self._current[coll].touch(id_, batch_id)
            if base is None or base["batch_id"] < batch_id:
                out.append(merge(base, id_, change, batch_id))
        return out

    def _series(
        self, batch_id: int, window_keys: list[str], new_runs: set[str]
    ) -> list[dict[str, Any]]:
        """The ``series`` documents of the runs whose windows this batch changed: each run's
        windows (``SERIES_FIELDS``), the changed ones replaced by their new versions.
        ``new_runs``: runs without a version before this batch, so without a series to read."""
        wv = self._versions["windows"]
        changed: dict[str, dict[str, dict[str, Any]]] = {}
        new: set[str] = set()
        for key in window_keys:
            doc = wv.at(key, batch_id)
            if doc is not None:
                sid = series_id(doc["run_id"], doc["window_start_s"])
                changed.setdefault(sid, {})[key] = {f: doc.get(f) for f in SERIES_FIELDS}
                if doc["run_id"] in new_runs:
                    new.add(sid)
        return self._advance(SERIES, changed, batch_id, rollups.merge_series, new=new)

    def _load_current(
        self, coll: str, ids: Iterable[str], batch_id: int, new: Iterable[str] = ()
    ) -> None:
        """Reads the read-model documents of ``ids`` not cached, one ``_id`` lookup each (an
        index search on every server; ``$in`` is decoded collection-wide by FerretDB).
        ``new``: ids known to have no document yet (nothing to read)."""
        cache = self._current[coll]
        known_new = set(new)
        for i in ids:
            if i not in cache.docs:
                cache.docs[i] = None if i in known_new else self.db[coll].find_one({"_id": i})

    def _upsert(self, coll: str, docs: list[dict[str, Any]]) -> None:
        from pymongo import ReplaceOne

        # Small bulks: FerretDB 1.24 (SQLite) never answers a bulk that replaces ~100 existing
        # documents (measured: 50 fine in 0.14 s, 100 hangs past any timeout and wedges that
        # database until restart); 25 per bulk costs the same per document.
        for i in range(0, len(docs), self.UPSERT_CHUNK):
            chunk = docs[i : i + self.UPSERT_CHUNK]
            self.db[coll].bulk_write(
                [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in chunk], ordered=False
            )

    def _plan_corrections(
        self, batch_id: int
    ) -> tuple[dict[str, Correction], dict[str, dict[str, Any]]]:
        """Corrections this batch applies, each from the window's version before the batch;
        for a replayed batch, the ones its versions recorded. Also run_id -> the identity of
        each run they touch (a run with no partial in this batch still gets a version)."""
        late = self.late
        if late is None:
            return {}, {}
        if not late.loaded:  # once per process: the windows still waiting, from MongoDB
            late.loaded = True
            late.track(self._fallback_windows(late.horizon_s))
        keys = late.candidates()
        self.loaded_last_batch += self._ensure("windows", keys)
        versions = self._versions["windows"]
        out: dict[str, Correction] = {}
        ids: dict[str, dict[str, Any]] = {}
        for key in keys:
            base, applied = versions.base(key, batch_id)
            doc = versions.at(key, batch_id) if applied else base
            if doc is None:
                continue
            if applied:
                recs = [r for r in doc.get("late_intensity") or [] if r["batch_id"] == batch_id]
                c = Correction.from_record(key, doc["run_id"], recs[-1]) if recs else None
            else:
                c = plan(doc, late.index, batch_id)
                late.track([doc])  # a window whose newest version has no fallback left
            if c is not None:
                out[key] = c
                ids[c.run_id] = {k: doc[k] for k in ("run_id", "user_id", "model_name")}
        if out:
            log.info("batch %d: %d windows of %d runs re-charged at a late intensity",
                     batch_id, len(out), len(ids))  # fmt: skip
        return out, ids

    def _fallback_windows(self, horizon_s: float | None) -> list[dict[str, Any]]:
        """Window versions with fallback energy that the lateness window may still correct,
        oldest version first (so the newest decides)."""
        query: dict[str, Any] = {"fallback_kwh": {"$gt": 0}}
        if horizon_s is not None:
            query["window_start_s"] = {"$gt": horizon_s - 86_400}  # window_s is at most a day
        fields = {"key": 1, "zone": 1, "window_start_s": 1, "window_s": 1, "fallback_kwh": 1,
                  "batch_id": 1}  # fmt: skip
        return sorted(self.db["windows"].find(query, fields), key=lambda d: d["batch_id"])

    def cached_keys(self) -> dict[str, int]:
        """How many keys of each collection the driver holds (bounded by activity)."""
        return {**{c: len(v) for c, v in self._versions.items()},
                **{c: len(v) for c, v in self._current.items()}}  # fmt: skip

    def collect_garbage(self) -> None:
        for coll, versions in self._versions.items():
            ids, versions.garbage = versions.garbage, []
            for i in range(0, len(ids), 5000):
                self.db[VERSIONED[coll]].delete_many({"_id": {"$in": ids[i : i + 5000]}})

    def write_intensity(self, rows: list[dict[str, Any]]) -> None:
        keys = [r["_id"] for r in rows]
        for i in range(0, len(keys), 5000):
            self.db["intensity"].delete_many({"_id": {"$in": keys[i : i + 5000]}})
        self._insert("intensity", rows)

    def trim_intensity(self, before_s: float) -> None:
        """Drops intensity the dashboard no longer shows, at most once an hour (bounded)."""
        if time.monotonic() - self._intensity_trimmed < 3600:
            return
        self._intensity_trimmed = time.monotonic()
        cut = datetime.fromtimestamp(before_s, timezone.utc)
        self.db["intensity"].delete_many({"end": {"$lt": cut}})

    def close(self) -> None:
        self._client.close()
