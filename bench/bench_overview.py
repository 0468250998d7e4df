"""The unfiltered Overview's reads on a year of history, before and after, side by side.

Writes ``--days`` day buckets ending today (``--users``/``--models``/... values each, the shape
the streaming job writes), their month buckets and the matching totals into a fresh database
of the configured MongoDB (the embedded FerretDB by default), then times, alternating in each
round so both see the same machine load:
* before: one ``totals`` read, and ``fetch_days_by_id`` for every day of the period and of the
  previous one not cached yet (the page before month buckets);
* after: one ``totals`` read, and ``fetch_buckets_by_id`` for what ``bucket_ids`` names: the
  whole months of both periods from ``months`` and only the days at their edges.
Settled buckets are then cached per process. Cold = empty cache (a fresh dashboard process);
warm = the same view again.

    python bench/bench_overview.py [--days 365] [--range 365] [--rounds 2]
Writes bench/results/overview.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIG = {"energy_kwh": 1.0, "co2_g": 200.0, "runs": 3, "cpu_kwh": 0.6, "gpu_kwh": 0.4,
       "ram_kwh": 0.0, "measured_kwh": 1.0, "estimated_kwh": 0.0, "fallback_kwh": 0.0,
       "n_events": 60, "gpu_hours": 0.5}  # fmt: skip


def values(args: argparse.Namespace) -> dict[str, list[str]]:
    return {"user": [f"u{i}" for i in range(args.users)],
            "model": [f"m{i}" for i in range(args.models)], "zone": ["GB", "DE", "FR"],
            "host": [f"h{i}" for i in range(args.hosts)],
            "tag": [f"project=p{i}" for i in range(4)] + [f"team=t{i}" for i in range(3)]}


def load(db: Any, args: argparse.Namespace, days: list[str]) -> None:
    vals = values(args)

    def bucket(id_: str, field: str, n: int) -> dict[str, Any]:
        fig = {k: v * n for k, v in FIG.items()}
        by = [{"dim": d, "value": v, **fig} for d, vs in vals.items() for v in vs]
        return {"_id": id_, field: id_, "batch_id": 1, "total": fig, "by": by}

    per_month: dict[str, int] = {}
    for d in days:
        per_month[d[:7]] = per_month.get(d[:7], 0) + 1
    docs = {"days": [bucket(d, "day", 1) for d in days],
            "months": [bucket(m, "month", n) for m, n in per_month.items()],
            "totals": [{"_id": f"{d}|{v}", "dim": d, "value": v, **FIG}
                       for d, vs in vals.items() for v in vs]
            + [{"_id": "all|all", "dim": "all", "value": "all", "days": days}]}  # fmt: skip
    for coll, rows in docs.items():
        for i in range(0, len(rows), 25):  # bulks of at most 25 (FerretDB hangs on ~100)
            db[coll].insert_many(rows[i:i + 25])


def _read(s: Any, ids: list[str], cache: dict[str, Any], now: datetime, fetch: Any) -> int:
    from carbonpipe.query import fetch_all_totals
    from dashboard import overview_data as od

    od.options(fetch_all_totals(s))
    missing = [d for d in ids if d not in cache]
    got = fetch(s, missing) if missing else {}
    for d in missing:
        if od.settled(d, now, s.lateness_s):
            cache[d] = got.get(d)
    return sum((cache[d] if d in cache else got.get(d)) is not None for d in ids)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=365, help="days of history in the store")
    ap.add_argument("--range", type=int, default=365, help="days the Overview shows")
    ap.add_argument("--users", type=int, default=5)
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    from carbonpipe.core.config import get_settings
    from carbonpipe.core.mongo import mongo_client
    from carbonpipe.query import fetch_buckets_by_id, fetch_days_by_id
    from dashboard import overview_data as od

    s = get_settings().model_copy(update={"mongo_db": f"bench_overview_{uuid.uuid4().hex[:8]}"})
    client = mongo_client(s.mongo_uri)
    now = datetime.now(timezone.utc)
    today = now.date()
    days = [(today - timedelta(days=i)).isoformat() for i in range(args.days)][::-1]
    try:
        load(client[s.mongo_db], args, days)
        period = od.period_for(od.CUSTOM, now, (today - timedelta(days=args.range - 1), today))
        periods = (period.previous(), period)
        per_day = list(dict.fromkeys(d for p in periods for d in od.day_ids(p)))
        bucketed = list(dict.fromkeys(i for p in periods for part in od.bucket_ids(p)
                                      for i in part))  # fmt: skip
        variants = {"before": (per_day, fetch_days_by_id),
                    "after": (bucketed, fetch_buckets_by_id)}  # fmt: skip
        have = set(days) | {d[:7] for d in days}
        rows: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name, (ids, fetch) in variants.items():
                cache: dict[str, Any] = {}
                for kind in ("cold", "warm"):
                    t = time.perf_counter()
                    n = _read(s, ids, cache, now, fetch)
                    rows.setdefault(f"{name}_{kind}_s", []).append(time.perf_counter() - t)
                    assert n == len(set(ids) & have), n
        result = {"days_in_store": args.days, "buckets_read_before": len(per_day),
                  "buckets_read_after": len(bucketed),
                  **{k: round(min(v), 3) for k, v in rows.items()},
                  "all": {k: [round(x, 3) for x in v] for k, v in rows.items()}}
        print(json.dumps(result, indent=1))
        out = ROOT / "bench" / "results" / "overview.json"
        out.write_text(json.dumps(result, indent=1) + "\n")
    finally:
        client.drop_database(s.mongo_db)


if __name__ == "__main__":
    main()
