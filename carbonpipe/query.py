"""``carbonpipe runs`` and ``carbonpipe users``: totals from the hot store, for scripts."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from carbonpipe.core.config import Settings, get_settings
from carbonpipe.core.errors import UserError
from carbonpipe.core.rollup_keys import calendar_days, month_split, rolled
from carbonpipe.core.timeutil import parse_iso
from carbonpipe.core.versions import (
    DAYS,
    MONTHS,
    RUN_INDEX,
    RUNS,
    SERIES,
    TOTALS,
    run_fields,
    series_days,
)

__all__ = ["RunFilter", "days_with_figures", "fetch_all_totals", "fetch_buckets_by_id",
           "fetch_days_by_id", "fetch_pipeline", "fetch_run",
           "fetch_runs", "fetch_totals", "read_models_version", "run_fields"]

SORTS = ("start", "co2_g", "energy_kwh", "duration_s")


@dataclass(frozen=True)
class RunFilter:
    """Which runs a reader wants (every field optional; ``tags`` as ``k=v``, all must match).
    ``since``/``until`` bound the run's start (UTC)."""

    user: str | None = None
    model: str | None = None
    tags: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None

    def days(self, known: list[str]) -> list[str]:
        lo = self.since.strftime("%Y-%m-%d") if self.since else ""
        last = self.until - timedelta(microseconds=1) if self.until else None  # exclusive
        hi = last.strftime("%Y-%m-%d") if last else "9999"
        return [d for d in known if lo <= d <= hi]

    def matches(self, run: Mapping[str, Any]) -> bool:
        if self.user and run.get("user_id") != self.user:
            return False
        if self.model and run.get("model_name") != self.model:
            return False
        tags = run.get("tags") or {}
        for pair in self.tags:
            k, _, v = pair.partition("=")
            if str(tags.get(k)) != v:
                return False
        start = run.get("start")
        if start is not None and self.since and start < self.since:
            return False
        return not (start is not None and self.until and start >= self.until)


@lru_cache(maxsize=4)
def _client(uri: str) -> Any:
    """One client per process and server (the dashboard re-runs its script on every refresh)."""
    from carbonpipe.core.mongo import mongo_client

    return mongo_client(uri, timeout_s=5.0)


def _db(settings: Settings) -> Any:
    return _client(settings.mongo_uri)[settings.mongo_db]


# Concurrent ``_id`` lookups: FerretDB answers each in ~10-20 ms here, mostly waiting, so 57
# lookups for a page of 50 runs took 1.1 s one after another and 0.25-0.43 s eight at a time
# (10,000 runs, bench/bench_scale.py). Only ``_id`` equality is pushed down, so no ``$in``.
LOOKUP_THREADS = 8


@lru_cache(maxsize=1)
def _pool() -> Any:
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="carbonpipe-lookup")


def _by_id(coll: Any, ids: list[str]) -> list[dict[str, Any] | None]:
    """The documents with these ``_id``s (None where absent), in order, looked up concurrently."""
    if len(ids) < 2:
        return [coll.find_one({"_id": i}) for i in ids]
    return list(_pool().map(lambda i: coll.find_one({"_id": i}), ids))


def _days(db: Any) -> list[str]:
    """Every UTC day with figures, oldest first (the ``all|all`` total's page index)."""
    doc = db[TOTALS].find_one({"_id": "all|all"}, {"days": 1})
    return list((doc or {}).get("days") or [])


def fetch_runs(
    settings: Settings,
    user: str | None = None,
    *,
    where: RunFilter | None = None,
    limit: int | None = None,
    sort: str = "start",
) -> list[dict[str, Any]]:
    """Runs, newest start first (or by ``sort``, largest first): the hourly run index is read
    newest hour first and each listed run by ``_id``, stopping once ``limit`` runs sorted by
    start are found, so the cost follows the page, not the history (``spark_jobs.rollups``).
    Another sort reads every run of ``where``'s days."""
    if sort not in SORTS:
        raise UserError(f"--sort {sort!r}: choose one of {', '.join(SORTS)}")
    where = where or RunFilter(user=user)
    db = _db(settings)
    fields = run_fields()
    out: list[dict[str, Any]] = []
    paged = sort == "start" and limit is not None

    def full() -> bool:
        return paged and len(out) >= (limit or 0)

    for day in reversed(where.days(_days(db))):
        hours = [f"{day}T{hour:02d}" for hour in range(23, -1, -1)]
        # A page usually ends within a day's first hours: read them a round of lookups at a
        # time (a whole day of index buckets was a third of ``carbonpipe runs --limit 50``).
        step = LOOKUP_THREADS if paged else len(hours)
        for at in range(0, len(hours), step):
            buckets = _by_id(db[RUN_INDEX], hours[at : at + step])
            i = 0
            while i < len(buckets) and not full():  # newest hour first, whole hours
                wanted: list[str] = []
                while i < len(buckets) and not (paged and len(out) + len(wanted) >= (limit or 0)):
                    wanted += [e["run_id"] for e in (buckets[i] or {}).get("runs") or []
                               if where.matches(e)]  # fmt: skip
                    i += 1
                docs = _by_id(db[RUNS], wanted)
                out += [{k: d.get(k) for k in fields} for d in docs if d and where.matches(d)]
            if full():
                break
        if full():
            break
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    if sort == "start":
        out.sort(key=lambda r: r.get("start") or epoch, reverse=True)
    else:
        out.sort(key=lambda r: r.get(sort) or 0, reverse=True)
    return out[:limit] if limit is not None else out


def fetch_run(settings: Settings, run_id: str) -> dict[str, Any] | None:
    """One run's current document (by ``_id``)."""
    doc: dict[str, Any] | None = _db(settings)[RUNS].find_one({"_id": run_id})
    return doc


def fetch_totals(
    settings: Settings, dim: str, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Sums per value of ``dim`` (user, model, zone, host, tag, all), largest CO2e first: the
    all-time totals, or the buckets of ``since``..``until`` (whole UTC days; its whole months
    from ``months``, the other days from ``days``)."""
    db = _db(settings)
    if since is None and until is None:
        rows = [dict(d) for d in db[TOTALS].find({"dim": dim})]
    else:
        acc: dict[str, dict[str, Any]] = {}
        have = _days(db)
        known = RunFilter(since=since, until=until).days(have)
        first = since.date() if since else None  # as ``RunFilter.days`` reads them
        last = (until - timedelta(microseconds=1)).date() if until else None
        span = calendar_days(first or date.fromisoformat(known[0]),
                             last or date.fromisoformat(known[-1])) if known else []  # fmt: skip
        months, days = month_split(span)
        for bucket in fetch_buckets_by_id(settings, [*months, *days], have).values():
            for e in bucket.get("by") or []:
                if e["dim"] != dim:
                    continue
                cur = acc.setdefault(e["value"], {"dim": dim, "value": e["value"]})
                for k, v in e.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        cur[k] = cur.get(k, 0) + v
        rows = list(acc.values())
    return _ranked(rows)


def fetch_all_totals(settings: Settings) -> list[dict[str, Any]]:
    """The all-time totals of every dimension in one read, largest CO2e first: FerretDB
    decodes the whole collection for any filter but ``_id``, so one read costs what one
    ``fetch_totals`` does (5 of them took 1.4 s of the Overview over 10,000 runs)."""
    return _ranked([dict(d) for d in _db(settings)[TOTALS].find()])


def read_models_version(settings: Settings) -> tuple[Any, Any] | None:
    """A value that changes whenever a micro-batch changes the figures of any rollup: the
    batch id and write time of the ``all|all`` total, which every such batch rewrites (a
    rebuild too). None: no figures yet. One small ``_id`` read, so a reader can keep what it
    built from the rollups until this changes."""
    doc = _db(settings)[TOTALS].find_one({"_id": "all|all"}, {"batch_id": 1, "updated_at": 1})
    return None if doc is None else (doc.get("batch_id"), doc.get("updated_at"))


def _ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        e = r.get("energy_kwh") or 0.0
        r["mean_intensity_g_per_kwh"] = (r.get("co2_g") or 0.0) / e if e > 0 else None
        r["runs"] = int(r.get("runs") or 0)
    return sorted(rows, key=lambda r: -(r.get("co2_g") or 0.0))


def fetch_days_by_id(settings: Settings, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The day buckets of ``ids`` (``YYYY-MM-DD``) that have figures, by day. Days without
    figures are not asked for (the ``all|all`` total lists the others). One ``_id`` read each,
    concurrently: the embedded FerretDB does not push ``$in`` down, and one query decoding a
    year of buckets outlasts the readers' 5 s socket timeout on a loaded host
    (bench/bench_overview.py); a week of buckets over 10,000 runs: ~100 ms each."""
    return fetch_buckets_by_id(settings, [i for i in ids if len(i) == 10])


def days_with_figures(settings: Settings) -> list[str]:
    """Every UTC day (``YYYY-MM-DD``) with figures, oldest first."""
    return _days(_db(settings))


def fetch_buckets_by_id(
    settings: Settings, ids: Iterable[str], known: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Day (``YYYY-MM-DD``) and month (``YYYY-MM``) buckets that have figures, by id: like
    ``fetch_days_by_id``, a month read from ``months`` (one read for its thirty days).
    ``known``: the days with figures, where the caller has read them already."""
    db = _db(settings)
    days = set(_days(db) if known is None else known)
    months = {d[:7] for d in days}
    want = sorted(set(ids))
    want_days = [i for i in want if len(i) == 10 and i in days]
    want_months = [i for i in want if len(i) == 7 and i in months]
    found = [*_by_id(db[DAYS], want_days), *_by_id(db[MONTHS], want_months)]
    return {str(d["_id"]): d for d in found if d is not None}


def fetch_windows(
    settings: Settings, run_id: str, run: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """A run's windows, oldest first, from its ``series`` documents (one ``_id`` lookup per
    UTC day of the run). ``run``: its current document, where the caller has it."""
    db = _db(settings)
    run = run if run is not None else db[RUNS].find_one({"_id": run_id})
    if not run or not run.get("start"):
        return []
    out: list[dict[str, Any]] = []
    for sid in series_days(run_id, run["start"], run.get("end") or run["start"]):
        doc = db[SERIES].find_one({"_id": sid})
        out.extend((doc or {}).get("windows") or [])
    return out


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


def fetch_pipeline(settings: Settings) -> dict[str, Any]:
    """The newest pipeline stats document: ``counts`` (all time, per outcome), ``last_batch``
    and the ``recent`` batches (time, duration, events, Kafka lag; bounded by the job)."""
    from carbonpipe.core.versions import newest

    docs = newest(_db(settings)["stats"].find())
    return docs[0] if docs else {}


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


def _when(flag: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_iso(value if "T" in value else value + "T00:00:00Z")
    except ValueError:
        raise UserError(f"{flag} {value!r}: give a UTC date or time, e.g. 2026-12-01 or "
                        "2026-12-01T08:00:00Z") from None  # fmt: skip


def _where(args: argparse.Namespace) -> RunFilter:
    for pair in args.tag or []:
        if "=" not in pair or pair.startswith("="):
            raise UserError(f"--tag {pair!r}: give key=value, e.g. --tag project=vision")
    return RunFilter(user=args.user, model=getattr(args, "model", None),
                     tags=tuple(args.tag or ()), since=_when("--since", args.since),
                     until=_when("--until", args.until))  # fmt: skip


def _runs(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit}: give at least 1 (or leave it out for all runs)")
    rows = fetch_runs(get_settings(), where=_where(args), limit=args.limit, sort=args.sort)
    cols = ("run_id", "user_id", "model_name", "start", "duration_s", "energy_kwh", "co2_g",
            "mean_intensity_g_per_kwh", "method")  # fmt: skip
    print_rows(rows, args.json, cols)
    return 0


def _users(args: argparse.Namespace) -> int:
    rows = [{"user_id": r["value"], **{k: v for k, v in r.items() if k not in ("dim", "value")}}
            for r in fetch_totals(get_settings(), "user", _when("--since", args.since),
                                  _when("--until", args.until))]  # fmt: skip
    if args.user:
        rows = [r for r in rows if r["user_id"] == args.user]
    table = ("user_id", "runs", "energy_kwh", "co2_g", "mean_intensity_g_per_kwh")
    keep = (*table, *(k for k in rolled() if k not in table), "first_day", "last_day")
    rows = [{k: r.get(k) for k in keep} for r in rows]
    print_rows(rows, args.json, table)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("runs", help="per-run energy and emissions (hot store), newest first")
    p.add_argument("--json", action="store_true")
    p.add_argument("--user")
    p.add_argument("--model")
    p.add_argument("--tag", action="append", metavar="K=V", help="repeat: all must match")
    p.add_argument("--since", help="runs started at or after this UTC date/time")
    p.add_argument("--until", help="runs started before this UTC date/time")
    p.add_argument("--limit", type=int, help="at most this many runs")
    p.add_argument("--sort", default="start", choices=SORTS, help="largest first (start: newest)")
    p.set_defaults(func=_runs, quick_exit=True)  # read-only: see carbonpipe.cli.quick_exit
    u = sub.add_parser("users", help="per-user totals (hot store rollups)")
    u.add_argument("--json", action="store_true")
    u.add_argument("--user")
    u.add_argument("--since", help="whole UTC days from this date")
    u.add_argument("--until", help="... to this date")
    u.set_defaults(func=_users, quick_exit=True)
