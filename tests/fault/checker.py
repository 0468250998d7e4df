"""One checker for every fault scenario: the four invariants of issue 11, from what the
scenario emitted and what the pipeline holds afterwards (Jepsen's *set* workload, in short).

1. **No loss**: every emitted ``(host, run_id, seq)`` is counted, dead-lettered with a reason,
   or reported dropped by its collector.
2. **No double count**: the events counted per run (``n_events``) equal the distinct seqs the
   run's document says it counted, and nothing was counted that was never emitted.
3. **Finite totals**: no NaN or infinity in any run or window document.
4. **Hot = cold**: each run's energy and event count in MongoDB equal the sum of its window
   partials in the Parquet cold store.
5. **Readers see the truth once**: one current ``runs`` document per run, equal to its newest
   version; the all-time and per-user totals and the day buckets equal the sums of the runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carbonpipe.core.config import Settings
from carbonpipe.core.versions import newest

Key = tuple[str, str, int]  # (host, run_id, seq)


@dataclass
class Outcome:
    """What the pipeline holds after a scenario."""

    runs: dict[str, dict[str, Any]]
    windows: list[dict[str, Any]]
    partials: list[dict[str, Any]]
    dead: dict[Key, str] = field(default_factory=dict)  # dead-lettered event -> reason
    counted: set[Key] = field(default_factory=set)
    current: list[dict[str, Any]] = field(default_factory=list)  # the readers' ``runs``
    totals: dict[str, dict[str, Any]] = field(default_factory=dict)
    days: list[dict[str, Any]] = field(default_factory=list)


def read_outcome(settings: Settings) -> Outcome:
    import pyarrow.dataset as ds
    from pymongo import MongoClient

    from tests.spark_jobs.pipeline_harness import consume_all

    db: Any = MongoClient(settings.mongo_uri, tz_aware=True)[settings.mongo_db]
    runs = {d["run_id"]: d for d in newest(db["run_versions"].find())}
    current = list(db["runs"].find())
    totals = {d["_id"]: d for d in db["totals"].find()}
    days = list(db["days"].find())
    windows = newest(db["windows"].find())
    cold = Path(settings.cold_store_uri) / "windows"
    partials = (
        ds.dataset(cold, format="parquet", partitioning="hive").to_table().to_pylist()
        if cold.exists() else []
    )  # fmt: skip
    dead: dict[Key, str] = {}
    for msg in consume_all(settings, settings.dlq_topic, timeout_s=5):
        letter = json.loads(msg.value)
        try:
            ev = json.loads(letter.get("raw") or "")
            key = (str(ev.get("host", "unknown")), str(ev["run_id"]), int(ev["seq"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # not an event with an identity (not JSON, no seq): counted by reason
        dead[key] = letter["reason"]
    counted = {
        (r["host"], run_id, seq)
        for run_id, doc in runs.items()
        for r in doc.get("seq_ranges") or []
        for seq in range(int(r["lo"]), int(r["hi"]) + 1)
    }
    return Outcome(runs, windows, partials, dead, counted, current, totals, days)


def check_invariants(
    out: Outcome, emitted: Iterable[Key], dropped: Mapping[tuple[str, str], int] | None = None
) -> None:
    emitted = set(emitted)
    lost = emitted - out.counted - set(out.dead)
    n_dropped = sum((dropped or {}).values())
    assert len(lost) <= n_dropped, f"lost without a trace: {sorted(lost)[:20]}"
    assert out.counted <= emitted, f"counted, never emitted: {sorted(out.counted - emitted)[:20]}"
    both = out.counted & set(out.dead)
    assert not both, f"counted and dead-lettered: {sorted(both)[:20]}"

    for run_id, doc in out.runs.items():
        distinct = sum(1 for k in out.counted if k[1] == run_id)
        with_seq = int(doc.get("n_seq") or 0)
        assert with_seq == distinct, f"run {run_id}: {with_seq} events counted, {distinct} distinct"

    for doc in [*out.runs.values(), *out.windows]:
        for k, v in doc.items():
            if isinstance(v, float):
                assert math.isfinite(v), f"{doc.get('key')}: {k} = {v}"

    cold: dict[str, list[float]] = {}
    for p in out.partials:
        acc = cold.setdefault(p["run_id"], [0.0, 0])
        acc[0] += p["energy_kwh"]
        acc[1] += p["n_events"]
    for run_id, doc in out.runs.items():
        if not doc.get("n_events"):
            continue
        kwh, n = cold.get(run_id, [0.0, 0])
        assert math.isclose(kwh, doc["energy_kwh"], rel_tol=1e-9), (run_id, kwh, doc["energy_kwh"])
        assert n == doc["n_events"], (run_id, n, doc["n_events"])

    ids = [d["_id"] for d in out.current]
    assert sorted(ids) == sorted(set(ids)) == sorted(out.runs), (ids, sorted(out.runs))
    for doc in out.current:
        version = out.runs[doc["_id"]]
        for k in ("energy_kwh", "co2_g", "n_events", "duplicates", "dead_letters"):
            assert doc.get(k) == version.get(k), (doc["_id"], k, doc.get(k), version.get(k))
    counted_runs = [d for d in out.runs.values() if d.get("n_events")]
    if counted_runs:
        kwh = sum(d["energy_kwh"] for d in counted_runs)
        assert math.isclose(out.totals["all|all"]["energy_kwh"], kwh, rel_tol=1e-9)
        assert math.isclose(sum(d["total"].get("energy_kwh", 0.0) for d in out.days), kwh,
                            rel_tol=1e-9)  # fmt: skip
        assert out.totals["all|all"]["runs"] == len(counted_runs)
        for user in {d["user_id"] for d in counted_runs}:
            mine = sum(d["energy_kwh"] for d in counted_runs if d["user_id"] == user)
            assert math.isclose(out.totals[f"user|{user}"]["energy_kwh"], mine, rel_tol=1e-9)
