"""How window and run documents merge, version by version (pure: no I/O).

Each micro-batch's window partials fold into the newest version of each window and run
(``merge_window``, ``merge_run``), the way every aggregate declares in
``carbonpipe.core.aggregates``; derived figures (means, the method label) are recomputed
after each merge. ``spark_jobs.hot_store`` writes the results as insert-only versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from carbonpipe.core.aggregates import AGGREGATES
from carbonpipe.core.units import J_PER_KWH
from spark_jobs.dedupe import merge_ranges
from spark_jobs.intensity_correction import Correction, settle


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
        elif agg.merge == "xor":
            doc[k] = int(old or 0) ^ int(new or 0)
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


def apply_corrections(
    doc: Mapping[str, Any], corrections: list[Correction], keep_record: bool
) -> dict[str, Any]:
    """``doc`` (a window's or run's version) with late-intensity corrections merged in: their
    deltas merge as the aggregates declare (sums), like any batch's partial; then the
    fallback figures settle (``intensity_correction.settle``). ``keep_record``: windows keep
    each correction (``late_intensity``) for provenance and for a replay's run totals."""
    out = dict(doc)
    for c in corrections:
        _merge_numbers(out, c.delta())
    if keep_record:
        out["late_intensity"] = [*(out.get("late_intensity") or []),
                                 *(c.record() for c in corrections)]  # fmt: skip
    return settle(out, {c.provider for c in corrections})


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
    """A run's version after ``batch_id``. Besides the aggregates: the seq ranges counted per
    host (``seq_ranges``, what ``spark_jobs.dedupe`` checks the next batches against), the
    duplicates dropped and the dead letters of the run, per reason."""
    doc = {k: v for k, v in (base or {}).items() if k != "_id"}
    doc["prev_batch_id"] = base["batch_id"] if base is not None else None  # see hot_store
    doc.setdefault("key", part["run_id"])
    doc["run_id"] = part["run_id"]
    for k in ("user_id", "model_name"):  # a batch of dead letters only may not know them
        doc[k] = part.get(k) or doc.get(k)
    _merge_numbers(doc, part)
    for k in ("hosts", "zones", "intensity_providers"):
        doc[k] = sorted(set(doc.get(k) or []) | set(part.get(k) or []))
    if part.get("schedule_decision_id"):
        doc["schedule_decision_id"] = part["schedule_decision_id"]
    ranges = seq_ranges(doc)
    for host, rs in (part.get("new_seq_ranges") or {}).items():
        ranges[host] = merge_ranges([*ranges.get(host, []), *rs])
    doc["seq_ranges"] = [
        {"host": h, "lo": lo, "hi": hi} for h in sorted(ranges) for lo, hi in ranges[h]
    ]
    doc["duplicates"] = int(doc.get("duplicates") or 0) + int(part.get("duplicates") or 0)
    dead = dict(doc.get("dead_letters") or {})
    for reason, n in (part.get("dead_letters") or {}).items():
        dead[reason] = dead.get(reason, 0) + int(n)
    doc["dead_letters"] = dead
    if doc.get("first_ts_s") is not None:
        doc["start"] = datetime.fromtimestamp(doc["first_ts_s"], timezone.utc)
        doc["end"] = datetime.fromtimestamp(doc["last_ts_s"], timezone.utc)
        doc["duration_s"] = doc["last_ts_s"] - doc["first_ts_s"]
    return _version(doc, batch_id)


def seq_ranges(run_doc: Mapping[str, Any] | None) -> dict[str, list[tuple[int, int]]]:
    """The seq ranges counted for a run, per host (stored as a list of ``{host, lo, hi}``:
    host names may hold dots, which document keys must not, and FerretDB stores no nested
    arrays)."""
    out: dict[str, list[tuple[int, int]]] = {}
    for r in (run_doc or {}).get("seq_ranges") or []:
        out.setdefault(str(r["host"]), []).append((int(r["lo"]), int(r["hi"])))
    return out


RECENT_BATCHES = 120  # per-batch records the stats keep for the health page's rates


def merge_counts(
    base: dict[str, Any] | None, counts: Mapping[str, int], batch_id: int,
    progress: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The pipeline's counters after ``batch_id``; with ``progress`` (the batch's time, its
    duration up to the hot-store write, Kafka lag) also ``last_batch`` and the newest
    ``recent`` batches (bounded), from which the health page reads rates."""
    doc = {k: v for k, v in (base or {"key": "pipeline", "counts": {}}).items() if k != "_id"}
    merged = dict(doc.get("counts") or {})
    for k, v in counts.items():
        merged[k] = merged.get(k, 0) + int(v)
    doc["counts"] = merged
    if progress is not None:
        last = {"batch_id": batch_id, **progress, "counts": dict(counts)}
        doc["last_batch"] = last
        doc["recent"] = [*(doc.get("recent") or [])[-(RECENT_BATCHES - 1):], last]
    doc["batch_id"] = batch_id
    doc["_id"] = f"{doc['key']}|b{batch_id}"
    doc["updated_at"] = datetime.now(timezone.utc)
    return doc
