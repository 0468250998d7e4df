"""``carbonpipe runs`` and ``carbonpipe users``: totals from the hot store, for scripts."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from carbonpipe.core.aggregates import shown_names
from carbonpipe.core.config import Settings, get_settings

RUN_IDENTITY = ("run_id", "user_id", "model_name", "start", "end", "duration_s")
RUN_PROVENANCE = ("hosts", "zones", "intensity_providers", "schedule_decision_id",
                  "duplicates", "dead_letters")  # counted once; dead-lettered, per reason


def run_fields() -> tuple[str, ...]:
    """What a reader gets per run: identity, the shown aggregates (declared once in
    ``carbonpipe.core.aggregates``) and provenance."""
    return (*RUN_IDENTITY, *shown_names(), *RUN_PROVENANCE)


def _db(settings: Settings) -> Any:
    from carbonpipe.core.mongo import mongo_client

    client: Any = mongo_client(settings.mongo_uri, timeout_s=5.0)
    return client[settings.mongo_db]


def fetch_runs(settings: Settings, user: str | None = None) -> list[dict[str, Any]]:
    query = {"user_id": user} if user else {}
    from carbonpipe.core.versions import newest

    docs = newest(_db(settings)["runs"].find(query))
    fields = run_fields()
    runs = [{k: d.get(k) for k in fields} for d in docs]
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    runs.sort(key=lambda r: r.get("start") or epoch, reverse=True)
    return runs


def user_totals(runs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per-user totals folded from run totals (pure, so the dashboard shares it)."""
    users: dict[str, dict[str, Any]] = {}
    for r in runs:
        u = users.setdefault(
            r["user_id"],
            {"user_id": r["user_id"], "runs": 0, "energy_kwh": 0.0, "co2_g": 0.0,
             "models": set()},
        )  # fmt: skip
        u["runs"] += 1
        u["energy_kwh"] += r.get("energy_kwh") or 0.0
        u["co2_g"] += r.get("co2_g") or 0.0
        u["models"].add(r.get("model_name"))
    out = []
    for u in users.values():
        u["models"] = sorted(m for m in u["models"] if m)
        e = u["energy_kwh"]
        u["mean_intensity_g_per_kwh"] = u["co2_g"] / e if e > 0 else None
        out.append(u)
    return sorted(out, key=lambda u: -u["co2_g"])


def fetch_windows(settings: Settings, run_id: str) -> list[dict[str, Any]]:
    from carbonpipe.core.versions import newest

    docs = newest(_db(settings)["windows"].find({"run_id": run_id}))
    return sorted(docs, key=lambda d: (d["window_start_s"], d["host"]))


def fetch_intensity(settings: Settings) -> list[dict[str, Any]]:
    """Recent and upcoming grid intensity the job folded from the feed, oldest first."""
    docs: list[dict[str, Any]] = list(
        _db(settings)["intensity"].find({}, {"_id": 0}).sort("start", 1)
    )
    return docs


def fetch_stats(settings: Settings) -> dict[str, int]:
    """Pipeline counters: valid events and dead letters per reason."""
    from carbonpipe.core.versions import newest

    docs = newest(_db(settings)["stats"].find())
    return dict(docs[0]["counts"]) if docs else {}


def print_rows(rows: list[dict[str, Any]], as_json: bool, cols: tuple[str, ...]) -> None:
    """JSON for scripts, an aligned table for people (shared by runs, users and sql)."""
    if as_json:
        print(json.dumps(rows, default=str, indent=1))
        return
    table = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) if table else len(c)
              for i, c in enumerate(cols)]  # fmt: skip
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%SZ")
    return "" if v is None else str(v)


def _runs(args: argparse.Namespace) -> int:
    rows = fetch_runs(get_settings(), args.user)
    cols = ("run_id", "user_id", "model_name", "start", "duration_s", "energy_kwh", "co2_g",
            "mean_intensity_g_per_kwh", "method")  # fmt: skip
    print_rows(rows, args.json, cols)
    return 0


def _users(args: argparse.Namespace) -> int:
    rows = user_totals(fetch_runs(get_settings()))
    print_rows(
        rows, args.json, ("user_id", "runs", "energy_kwh", "co2_g", "mean_intensity_g_per_kwh")
    )
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("runs", help="per-run energy and emissions (hot store)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--user")
    p.set_defaults(func=_runs)
    u = sub.add_parser("users", help="per-user totals (hot store)")
    u.add_argument("--json", action="store_true")
    u.set_defaults(func=_users)
