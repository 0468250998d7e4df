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
only writer of its database, so the driver keeps the versions of the windows still open (not
yet behind the watermark) in memory and reads MongoDB only once, at start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from carbonpipe.core.aggregates import AGGREGATES
from carbonpipe.core.units import J_PER_KWH


def window_id(row: Mapping[str, Any]) -> str:
    return f"{row['run_id']}|{row['host']}|{row['zone']}|{int(row['window_start_s'])}"


def _merge_numbers(doc: dict[str, Any], part: Mapping[str, Any]) -> None:
    """Merges ``part`` into ``doc`` the way each aggregate of ``AGGREGATES`` declares."""
    for agg in AGGREGATES:
        k, old, new = agg.name, doc.get(agg.name), part.get(agg.name)
        if agg.merge == "sum":
            doc[k] = (old or 0) + (new or 0)
        elif agg.merge == "last":
            doc[k] = new if new is not None else old
        else:
            vals = [v for v in (old, new) if v is not None]
            doc[k] = (max if agg.merge == "max" else min)(vals) if vals else None


def method_label(doc: Mapping[str, Any]) -> str:
    """How the energy figure was obtained: measured, estimated, mixed or unknown."""
    total = doc.get("energy_kwh") or 0.0
    meas, est = doc.get("measured_kwh") or 0.0, doc.get("estimated_kwh") or 0.0
    if total <= 0:
        return "unknown"
    if meas >= total * (1 - 1e-9):
        return "measured"
    if est >= total * (1 - 1e-9):
        return "estimated"
    if meas == 0 and est == 0:
        return "unknown"
    return "mixed"


def _derive(doc: dict[str, Any]) -> dict[str, Any]:
    e = doc.get("energy_kwh") or 0.0
    doc["mean_intensity_g_per_kwh"] = (doc["co2_g"] / e) if e > 0 else None
    cov = doc.get("covered_s") or 0.0
    doc["mean_power_w"] = (e * J_PER_KWH / cov) if cov > 0 else None
    n = doc.get("n_events") or 0
    doc["mean_cpu_utilization_pct"] = (doc.get("sum_cpu_utilization_pct") or 0) / n if n else None
    doc["method"] = method_label(doc)
    doc["updated_at"] = datetime.now(timezone.utc)
    return doc


def merge_window(
    base: dict[str, Any] | None, part: Mapping[str, Any], batch_id: int
) -> dict[str, Any]:
    """The version of a window after ``batch_id``: ``base`` (newest earlier version) + part."""
    doc = {k: v for k, v in (base or {}).items() if k != "_id"}
    if base is None:
        ws = int(part["window_start_s"])
        doc.update(
            key=window_id(part),
            run_id=part["run_id"],
            user_id=part["user_id"],
            model_name=part["model_name"],
            host=part["host"],
            zone=part["zone"],
            window_start=datetime.fromtimestamp(ws, timezone.utc),
            window_start_s=ws,
            window_s=int(part["window_s"]),
            window_end=datetime.fromtimestamp(ws + int(part["window_s"]), timezone.utc),
        )
    _merge_numbers(doc, part)
    doc["intensity_providers"] = sorted(
        set(doc.get("intensity_providers") or []) | set(part.get("intensity_providers") or [])
    )
    if part.get("schedule_decision_id"):
        doc["schedule_decision_id"] = part["schedule_decision_id"]
    return _version(doc, batch_id)


def _version(doc: dict[str, Any], batch_id: int) -> dict[str, Any]:
    doc["batch_id"] = batch_id
    doc["_id"] = f"{doc['key']}|b{batch_id}"
    return _derive(doc)


def fold_windows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Spark's rows (one per window and provider) -> one partial per window."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = window_id(row)
        cur = out.get(key)
        provider = row.get("intensity_provider")
        if cur is None:
            cur = {k: v for k, v in row.items() if k != "intensity_provider"}
            cur["intensity_providers"] = set()
            out[key] = cur
        else:
            _merge_numbers(cur, row)
            cur["schedule_decision_id"] = cur.get("schedule_decision_id") or row.get(
                "schedule_decision_id"
            )
        if provider:
            cur["intensity_providers"].add(provider)
    for cur in out.values():
        cur["intensity_providers"] = sorted(cur["intensity_providers"])
    return list(out.values())


def run_parts(windows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """This batch's window partials folded per run."""
    runs: dict[str, dict[str, Any]] = {}
    for w in windows:
        r = runs.setdefault(
            w["run_id"],
            {
                "run_id": w["run_id"],
                "user_id": w["user_id"],
                "model_name": w["model_name"],
                "hosts": set(),
                "zones": set(),
                "intensity_providers": set(),
            },
        )
        _merge_numbers(r, w)
        r["hosts"].add(w["host"])
        r["zones"].add(w["zone"])
        r["intensity_providers"].update(w.get("intensity_providers") or [])
        if w.get("schedule_decision_id"):
            r["schedule_decision_id"] = w["schedule_decision_id"]
    return runs


def merge_run(
    base: dict[str, Any] | None, part: Mapping[str, Any], batch_id: int
) -> dict[str, Any]:
    doc = {k: v for k, v in (base or {}).items() if k != "_id"}
    doc.setdefault("key", part["run_id"])
    doc["run_id"] = part["run_id"]
    doc["user_id"], doc["model_name"] = part["user_id"], part["model_name"]
    _merge_numbers(doc, part)
    for k in ("hosts", "zones", "intensity_providers"):
        doc[k] = sorted(set(doc.get(k) or []) | set(part.get(k) or []))
    if part.get("schedule_decision_id"):
        doc["schedule_decision_id"] = part["schedule_decision_id"]
    doc["start"] = datetime.fromtimestamp(doc["first_ts_s"], timezone.utc)
    doc["end"] = datetime.fromtimestamp(doc["last_ts_s"], timezone.utc)
    doc["duration_s"] = doc["last_ts_s"] - doc["first_ts_s"]
    return _version(doc, batch_id)


def merge_counts(
    base: dict[str, Any] | None, counts: Mapping[str, int], batch_id: int
) -> dict[str, Any]:
    doc = {k: v for k, v in (base or {"key": "pipeline", "counts": {}}).items() if k != "_id"}
    merged = dict(doc.get("counts") or {})
    for k, v in counts.items():
        merged[k] = merged.get(k, 0) + int(v)
    doc["counts"] = merged
    doc["batch_id"] = batch_id
    doc["_id"] = f"{doc['key']}|b{batch_id}"
    doc["updated_at"] = datetime.now(timezone.utc)
    return doc


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


def client_options(uri: str, timeout_s: float) -> dict[str, Any]:
    """pymongo options: a timeout on every call, and write concern ``majority`` on a replica set.

    A hung server must fail the batch (which is retried) instead of wedging the job, so server
    selection, connect, socket reads and the write concern all give up after ``timeout_s``. On
    a replica set a w:1 write can be rolled back by a failover after Spark has committed the
    batch, so writes wait for a journaled majority there. FerretDB and a standalone mongod are
    no replica set: plain w:1. Read from the URI (``replicaSet=``, ``mongodb+srv://``), so that
    making a store needs no server; a ``w=`` in the URI wins.
    """
    from urllib.parse import parse_qs, urlsplit

    ms = max(1, int(timeout_s * 1000))
    opts: dict[str, Any] = {
        "serverSelectionTimeoutMS": ms, "connectTimeoutMS": ms, "socketTimeoutMS": ms,
        "wTimeoutMS": ms, "tz_aware": True,
    }  # fmt: skip
    query = {k.lower() for k in parse_qs(urlsplit(uri).query)}
    if "w" not in query and ("replicaset" in query or uri.startswith("mongodb+srv://")):
        opts.update(w="majority", journal=True)
    return opts


class HotStore:
    """The pymongo edge. Collections: windows, runs, stats (versioned), intensity, job_state."""

    GC_EVERY = 20  # batches between deletions of superseded versions
    CHUNK = 2000  # documents per insert_many

    def __init__(
        self, uri: str, db: str, write_threads: int = 2, timeout_s: float = 30.0
    ) -> None:
        from pymongo import MongoClient

        self._client: Any = MongoClient(uri, **client_options(uri, timeout_s))
        self.db = self._client[db]
        # Chunks go to the server over this many connections at once: the embedded FerretDB
        # spends most of an insert converting documents, which runs in parallel (measured:
        # 16,800 window documents in 4.6 s over one connection, 3.0 s over two).
        self.write_threads = max(1, write_threads)
        self._versions = {c: Versions() for c in ("windows", "runs", "stats")}
        self._batches = 0
        # Windows starting after this may not be in MongoDB unless this process wrote them
        # (and then they are cached until evicted): a new live window costs no query.
        self._stored_windows_until_s: float | None = None
        self.loaded_last_batch = 0  # keys the last batch had to read from MongoDB

    def _prepare(self) -> None:
        """Once per process: indexes, and how far back MongoDB holds windows already."""
        for coll in ("windows", "runs", "stats"):
            self.db[coll].create_index("key")
        for coll in ("windows", "runs"):
            self.db[coll].create_index("run_id")
        newest_window = self.db["windows"].find_one({}, sort=[("window_start_s", -1)])
        self._stored_windows_until_s = newest_window["window_start_s"] if newest_window else -1

    def _ensure(self, coll: str, keys: Iterable[str], maybe_stored: Any = None) -> int:
        """Loads the versions of ``keys`` not in the cache (those ``maybe_stored`` says MongoDB
        may hold; the others are new). Returns how many keys were read from MongoDB."""
        versions = self._versions[coll]
        missing = [k for k in keys if k not in versions]
        ask = [k for k in missing if maybe_stored is None or maybe_stored(k)]
        new = [k for k in missing if maybe_stored is not None and not maybe_stored(k)]
        versions.loaded(new, [])
        for i in range(0, len(ask), 5000):
            chunk = ask[i : i + 5000]
            versions.loaded(chunk, self.db[coll].find({"key": {"$in": chunk}}))
        return len(ask)

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
        self._insert(coll, new)
        for doc in new:
            versions.add(doc)
        return len(new)

    def write_batch(
        self, batch_id: int, windows: list[dict[str, Any]], counts: dict[str, int]
    ) -> int:
        """Merges one micro-batch's window partials into windows and runs, and its counts into
        the pipeline stats; returns the number of window versions written."""
        if self._stored_windows_until_s is None:
            self._prepare()
        by_window = {window_id(w): w for w in windows}
        start_of = {k: int(w["window_start_s"]) for k, w in by_window.items()}
        until = self._stored_windows_until_s
        self.loaded_last_batch = self._ensure(
            "windows", by_window, lambda k: start_of[k] <= (until if until is not None else -1)
        )
        runs = run_parts(windows)
        self.loaded_last_batch += self._ensure("runs", runs)
        self._ensure("stats", ["pipeline"])
        n = self._apply("windows", by_window, merge_window, batch_id)
        self._apply("runs", runs, merge_run, batch_id)
        self._apply("stats", {"pipeline": counts}, merge_counts, batch_id)
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

    def cached_keys(self) -> dict[str, int]:
        """How many keys of each collection the driver holds (bounded by activity)."""
        return {coll: len(v) for coll, v in self._versions.items()}

    def collect_garbage(self) -> None:
        for coll, versions in self._versions.items():
            ids, versions.garbage = versions.garbage, []
            for i in range(0, len(ids), 5000):
                self.db[coll].delete_many({"_id": {"$in": ids[i : i + 5000]}})

    def write_intensity(self, rows: list[dict[str, Any]]) -> None:
        keys = [r["_id"] for r in rows]
        for i in range(0, len(keys), 5000):
            self.db["intensity"].delete_many({"_id": {"$in": keys[i : i + 5000]}})
        self._insert("intensity", rows)

    def close(self) -> None:
        self._client.close()
