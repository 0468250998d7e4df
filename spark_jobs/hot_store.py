"""MongoDB hot store: windows, runs and pipeline counters, written idempotently.

Why read-merge-replace instead of ``$inc``: each document remembers the last micro-batch that
touched it (``last_batch``). A batch replayed after a crash (Spark re-runs the last batch whose
commit was not recorded) finds its own id there and is skipped, so nothing is counted twice.
Merging in Python and writing whole documents uses only find / replace-with-upsert, which both
MongoDB and FerretDB support. It assumes one writer per database: the streaming query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

SUMMED = (
    "energy_kwh",
    "cpu_kwh",
    "gpu_kwh",
    "ram_kwh",
    "measured_kwh",
    "estimated_kwh",
    "co2_g",
    "fallback_kwh",
    "forecast_kwh",
    "covered_s",
    "n_events",
    "sum_cpu_utilization_pct",
)
MAXED = ("max_gpu_mem_used_mb", "max_ram_used_mb", "last_ts_s", "max_seq", "ended")
MINNED = ("first_ts_s", "min_seq")


def window_id(row: Mapping[str, Any]) -> str:
    return f"{row['run_id']}|{row['host']}|{row['zone']}|{int(row['window_start_s'])}"


def _merge_numbers(doc: dict[str, Any], part: Mapping[str, Any]) -> None:
    for k in SUMMED:
        doc[k] = (doc.get(k) or 0) + (part.get(k) or 0)
    for k in MAXED:
        vals = [v for v in (doc.get(k), part.get(k)) if v is not None]
        doc[k] = max(vals) if vals else None
    for k in MINNED:
        vals = [v for v in (doc.get(k), part.get(k)) if v is not None]
        doc[k] = min(vals) if vals else None


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
    doc["mean_power_w"] = (e * 3.6e6 / cov) if cov > 0 else None
    n = doc.get("n_events") or 0
    doc["mean_cpu_utilization_pct"] = (doc.get("sum_cpu_utilization_pct") or 0) / n if n else None
    doc["method"] = method_label(doc)
    doc["updated_at"] = datetime.now(timezone.utc)
    return doc


def merge_window(
    existing: dict[str, Any] | None, part: Mapping[str, Any], batch_id: int
) -> dict[str, Any] | None:
    """New window document, or None when this batch was already applied to it."""
    if existing is not None and existing.get("last_batch", -1) >= batch_id:
        return None
    doc = dict(existing or {})
    if existing is None:
        ws = int(part["window_start_s"])
        doc.update(
            _id=window_id(part),
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
    doc["last_batch"] = batch_id
    return _derive(doc)


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
    existing: dict[str, Any] | None, part: Mapping[str, Any], batch_id: int
) -> dict[str, Any] | None:
    if existing is not None and existing.get("last_batch", -1) >= batch_id:
        return None
    doc = dict(existing or {"_id": part["run_id"], "run_id": part["run_id"]})
    doc["user_id"], doc["model_name"] = part["user_id"], part["model_name"]
    _merge_numbers(doc, part)
    for k in ("hosts", "zones", "intensity_providers"):
        doc[k] = sorted(set(doc.get(k) or []) | set(part.get(k) or []))
    if part.get("schedule_decision_id"):
        doc["schedule_decision_id"] = part["schedule_decision_id"]
    doc["start"] = datetime.fromtimestamp(doc["first_ts_s"], timezone.utc)
    doc["end"] = datetime.fromtimestamp(doc["last_ts_s"], timezone.utc)
    doc["duration_s"] = doc["last_ts_s"] - doc["first_ts_s"]
    doc["last_batch"] = batch_id
    return _derive(doc)


def merge_counts(
    existing: dict[str, Any] | None, counts: Mapping[str, int], batch_id: int, doc_id: str
) -> dict[str, Any] | None:
    if existing is not None and existing.get("last_batch", -1) >= batch_id:
        return None
    doc = dict(existing or {"_id": doc_id, "counts": {}})
    merged = dict(doc.get("counts") or {})
    for k, v in counts.items():
        merged[k] = merged.get(k, 0) + int(v)
    doc["counts"] = merged
    doc["last_batch"] = batch_id
    doc["updated_at"] = datetime.now(timezone.utc)
    return doc


class HotStore:
    """The pymongo edge. Collections: windows, runs, stats, intensity."""

    def __init__(self, uri: str, db: str) -> None:
        from pymongo import MongoClient

        self._client: Any = MongoClient(uri, serverSelectionTimeoutMS=10_000, tz_aware=True)
        self.db = self._client[db]

    def _apply(self, coll: str, docs: dict[str, dict[str, Any]], merge: Any, batch_id: int) -> int:
        from pymongo import ReplaceOne

        if not docs:
            return 0
        ids = list(docs)
        existing: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 1000):
            for d in self.db[coll].find({"_id": {"$in": ids[i : i + 1000]}}):
                existing[d["_id"]] = d
        ops = []
        for _id, part in docs.items():
            new = merge(existing.get(_id), part, batch_id)
            if new is not None:
                ops.append(ReplaceOne({"_id": _id}, new, upsert=True))
        for i in range(0, len(ops), 1000):
            self.db[coll].bulk_write(ops[i : i + 1000], ordered=False)
        return len(ops)

    def write_batch(
        self, batch_id: int, windows: list[dict[str, Any]], counts: dict[str, int]
    ) -> int:
        n = self._apply("windows", {window_id(w): w for w in windows}, merge_window, batch_id)
        runs = {
            k: {
                **v,
                "hosts": sorted(v["hosts"]),
                "zones": sorted(v["zones"]),
                "intensity_providers": sorted(v["intensity_providers"]),
            }
            for k, v in run_parts(windows).items()
        }
        self._apply("runs", runs, merge_run, batch_id)
        self._apply(
            "stats",
            {"pipeline": counts},
            lambda ex, c, b: merge_counts(ex, c, b, "pipeline"),
            batch_id,
        )
        return n

    def write_intensity(self, rows: list[dict[str, Any]]) -> None:
        from pymongo import ReplaceOne

        ops = [ReplaceOne({"_id": r["_id"]}, r, upsert=True) for r in rows]
        for i in range(0, len(ops), 1000):
            self.db["intensity"].bulk_write(ops[i : i + 1000], ordered=False)

    def close(self) -> None:
        self._client.close()
