"""The unfiltered Overview's reads on a year of history, before and after, side by side.

Writes ``--days`` day buckets ending today (``--users``/``--models``/... values each, the shape
the streaming job writes) and the matching totals into a fresh database of the configured
MongoDB (the embedded FerretDB by default), then times, alternating in each round so both see
the same machine load:
* before: the filter choices as one ``totals`` read per dimension, and one ``_id`` read per
  day of the period and of the previous one (settled days then cached per day);
* after: one ``totals`` read, and ``fetch_days_by_id`` for the days not cached yet (only the
  days that have figures: the previous period of a range that starts with the history is
  not read).
Cold = empty cache (a fresh dashboard process); warm = the same view again.

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
    by = [{"dim": d, "value": v, **FIG} for d, vs in vals.items() for v in vs]
    docs = [{"_id": d, "day": d, "batch_id": 1, "total": dict(FIG), "by": by} for d in days]
    totals = [{"_id": f"{d}|{v}", "dim": d, "value": v, **FIG} for d, vs in vals.items()
              for v in vs] + [{"_id": "all|all", "dim": "all", "value": "all", "days": days}]
    for coll, rows in (("days", docs), ("totals", totals)):
        for i in range(0, len(rows), 25):  # bulks of at most 25 (FerretDB hangs on ~100)
            db[coll].insert_many(rows[i:i + 25])


def before(s: Any, days: list[str], cache: dict[str, Any], now: datetime) -> int:
    from carbonpipe.query import fetch_day, fetch_totals
    from dashboard import overview_data as od

    od.options([r for d in od.DIMS for r in fetch_totals(s, d)])
    out = 0
    for d in days:
        if d in cache:
            doc = cache[d]
        else:
            doc = fetch_day(s, d)
            if od.settled(d, now, s.lateness_s):
                cache[d] = doc
        out += doc is not None
    return out


def after(s: Any, days: list[str], cache: dict[str, Any], now: datetime) -> int:
    from carbonpipe.query import fetch_all_totals, fetch_days_by_id
    from dashboard import overview_data as od

    od.options(fetch_all_totals(s))
    missing = [d for d in days if d not in cache]
    got = fetch_days_by_id(s, missing) if missing else {}
    for d in missing:
        if od.settled(d, now, s.lateness_s):
            cache[d] = got.get(d)
    return sum((cache[d] if d in cache else got.get(d)) is not None for d in days)


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
    from dashboard import overview_data as od

    s = get_settings().model_copy(update={"mongo_db": f"bench_overview_{uuid.uuid4().hex[:8]}"})
    client = mongo_client(s.mongo_uri)
    now = datetime.now(timezone.utc)
    today = now.date()
    days = [(today - timedelta(days=i)).isoformat() for i in range(args.days)][::-1]
    try:
        load(client[s.mongo_db], args, days)
        period = od.period_for(od.CUSTOM, now, (today - timedelta(days=args.range - 1), today))
        shown = list(dict.fromkeys([*od.day_ids(period.previous()), *od.day_ids(period)]))
        rows: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name, fn in (("before", before), ("after", after)):
                cache: dict[str, Any] = {}
                for kind in ("cold", "warm"):
                    t = time.perf_counter()
                    n = fn(s, shown, cache, now)
                    rows.setdefault(f"{name}_{kind}_s", []).append(time.perf_counter() - t)
                    assert n == min(len(shown), args.days), n
        result = {"days_in_store": args.days, "days_read": len(shown),
                  **{k: round(min(v), 3) for k, v in rows.items()},
                  "all": {k: [round(x, 3) for x in v] for k, v in rows.items()}}
        print(json.dumps(result, indent=1))
        out = ROOT / "bench" / "results" / "overview.json"
        out.write_text(json.dumps(result, indent=1) + "\n")
    finally:
        client.drop_database(s.mongo_db)


if __name__ == "__main__":
    main()
