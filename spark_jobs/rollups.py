"""The read models readers use (pure: no I/O): day buckets and all-time totals.

Readers (``carbonpipe runs/users``, the dashboard, reports) never fold versions or scan the
windows. They read three collections the job keeps current in the same micro-batch:
- ``runs``: one document per run (``_id`` = run id), the newest version of the run;
- ``days``: one document per UTC day (``_id`` = ``YYYY-MM-DD``, MongoDB's *bucket pattern*):
  the day's sums per dimension value (``by``: user, model, zone, host, tag ``k=v``; ``all``);
- ``months``: the same per UTC month (``_id`` = ``YYYY-MM``), for readers of long ranges;
- ``run_index``: one document per UTC hour (``_id`` = ``YYYY-MM-DDTHH``): who ran what for
  every run that started in that hour, the listing readers page through newest first (then
  they read the runs they list by ``_id``);
- ``totals``: one document per dimension value (``_id`` = ``user|alice``), all time, plus
  ``all|all`` with the list of days that have runs.
Why buckets keyed by ``_id``: an ``_id`` equality is the one query the embedded FerretDB
(SQLite) answers without decoding the whole collection (measured: 10,000 run documents, any
filter or sort: 0.65-1.7 s; one ``_id``: a few ms), and it is the cheapest query on MongoDB
too. A bucket's size follows the distinct values of a day (or the runs started in an hour),
never the history, and an index entry is written once per run.

Idempotent like the versions: a bucket or total records the ``batch_id`` that last changed it;
a replayed batch finds its own id there and adds nothing. What rolls up is every summed
aggregate readers see (``carbonpipe.core.aggregates``), so a new one is rolled up too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from carbonpipe.core.rollup_keys import ALL, DimKey, dim_values, rolled

Sums = dict[str, float]


def day_of(ts_s: float) -> str:
    return datetime.fromtimestamp(ts_s, timezone.utc).strftime("%Y-%m-%d")


def _add(into: Sums, row: Mapping[str, Any], names: Iterable[str]) -> None:
    for k in names:
        v = row.get(k)
        if v:
            into[k] = into.get(k, 0.0) + v


def deltas(
    windows: Iterable[Mapping[str, Any]], new_runs: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[DimKey, Sums]]:
    """A batch's change to each day: its window partials (and late-intensity corrections,
    shaped like partials) summed per dimension value of the window's day; each run seen for
    the first time adds ``runs: 1`` on the day it started (``new_runs``: run id -> the run's
    version after the batch)."""
    names = rolled()
    out: dict[str, dict[DimKey, Sums]] = {}
    for w in windows:
        day = out.setdefault(day_of(w["window_start_s"]), {})
        for key in dim_values(w):
            _add(day.setdefault(key, {}), w, names)
    for run in new_runs.values():
        if run.get("first_ts_s") is None:
            continue
        day = out.setdefault(day_of(run["first_ts_s"]), {})
        for key in dim_values(run):
            sums = day.setdefault(key, {})
            sums["runs"] = sums.get("runs", 0) + 1
    return out


def by_month(day_deltas: Mapping[str, Mapping[DimKey, Sums]]) -> dict[str, dict[DimKey, Sums]]:
    """A batch's change to each UTC month (``YYYY-MM``): its days' changes summed. The
    ``months`` buckets let a reader of a long range read one bucket per whole month instead of
    its thirty days (a year's Overview: 12 buckets and the days at its edges, not 365)."""
    out: dict[str, dict[DimKey, Sums]] = {}
    for day, keys in day_deltas.items():
        month = out.setdefault(day[:7], {})
        for key, sums in keys.items():
            _add(month.setdefault(key, {}), sums, sums)
    return out


def months_from_days(days: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Month buckets summed from day buckets: for a store written before ``months`` existed.
    A month's ``batch_id`` is its newest day's, so a batch whose days were written before a
    crash (and whose months were not) is not applied to the month again by its replay."""
    acc: dict[str, dict[DimKey, Sums]] = {}
    newest: dict[str, int] = {}
    for d in days:
        month = str(d.get("day") or d["_id"])[:7]
        delta = acc.setdefault(month, {})
        total = d.get("total") or {}
        _add(delta.setdefault(ALL, {}), total, total)
        for e in d.get("by") or []:
            sums = {k: v for k, v in e.items() if k not in ("dim", "value")}
            _add(delta.setdefault((e["dim"], e["value"]), {}), sums, sums)
        newest[month] = max(newest.get(month, int(d["batch_id"])), int(d["batch_id"]))
    return [merge_month(None, m, delta, newest[m]) for m, delta in sorted(acc.items())]


def merge_month(
    base: Mapping[str, Any] | None, month: str, delta: Mapping[DimKey, Sums], batch_id: int
) -> dict[str, Any]:
    """The month's bucket after ``batch_id``: a day bucket's shape, ``month`` for ``day``."""
    return _merge_bucket(base, month, delta, batch_id, "month")


def merge_day(
    base: Mapping[str, Any] | None, day: str, delta: Mapping[DimKey, Sums], batch_id: int
) -> dict[str, Any]:
    """The day's bucket after ``batch_id``: its sums plus ``delta``."""
    return _merge_bucket(base, day, delta, batch_id, "day")


def _merge_bucket(
    base: Mapping[str, Any] | None,
    bucket: str,
    delta: Mapping[DimKey, Sums],
    batch_id: int,
    field: str,
) -> dict[str, Any]:
    by: dict[DimKey, Sums] = {
        (e["dim"], e["value"]): {k: v for k, v in e.items() if k not in ("dim", "value")}
        for e in (base or {}).get("by") or []
    }
    if base is not None:
        by[ALL] = dict(base.get("total") or {})
    for key, sums in delta.items():
        cur = by.setdefault(key, {})
        _add(cur, sums, sums)
    return {
        "_id": bucket,
        field: bucket,
        "batch_id": batch_id,
        "total": dict(by.get(ALL, {})),
        "by": [{"dim": d, "value": v, **s} for (d, v), s in sorted(by.items()) if (d, v) != ALL],
        "updated_at": datetime.now(timezone.utc),
    }


INDEX_FIELDS = ("run_id", "user_id", "model_name", "tags", "start")


def hour_of(ts_s: float) -> str:
    return datetime.fromtimestamp(ts_s, timezone.utc).strftime("%Y-%m-%dT%H")


def merge_index(
    base: Mapping[str, Any] | None,
    hour: str,
    entries: Mapping[str, Mapping[str, Any] | None],
    batch_id: int,
) -> dict[str, Any]:
    """The hour's run index after ``batch_id``: who ran what (``INDEX_FIELDS``) for each run
    that started in that hour, newest first. Written when a run first counts an event (or its
    start moves to another hour: ``None`` removes it), not on every batch a run is active, so a
    busy hour costs one small write per new run; the totals live in ``runs``."""
    runs = {r["run_id"]: dict(r) for r in (base or {}).get("runs") or []}
    for run_id, entry in entries.items():
        if entry is None:
            runs.pop(run_id, None)
        else:
            runs[run_id] = {k: entry.get(k) for k in INDEX_FIELDS}
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    return {
        "_id": hour,
        "hour": hour,
        "batch_id": batch_id,
        "runs": sorted(runs.values(), key=lambda r: r.get("start") or epoch, reverse=True),
    }


def total_id(key: DimKey) -> str:
    return f"{key[0]}|{key[1]}"


def merge_total(
    base: Mapping[str, Any] | None, doc_id: str, days: Mapping[str, Sums], batch_id: int
) -> dict[str, Any]:
    """A dimension value's all-time total (``doc_id`` = ``total_id``) after ``batch_id``
    (``days``: its sums per day in this batch). ``all|all`` also lists every day that has
    figures: the readers' page index."""
    dim, value = doc_id.split("|", 1)
    key = (dim, value)
    doc = {k: v for k, v in (base or {}).items() if k != "_id"}
    for sums in days.values():
        _add(doc, sums, sums)
    seen = sorted({*(doc.get("days") or []), *days}) if key == ALL else None
    first = min([*days, *([doc["first_day"]] if doc.get("first_day") else [])])
    last = max([*days, *([doc["last_day"]] if doc.get("last_day") else [])])
    doc.update(_id=doc_id, dim=dim, value=value, first_day=first,
               last_day=last, batch_id=batch_id, updated_at=datetime.now(timezone.utc))  # fmt: skip
    if seen is not None:
        doc["days"] = seen
    return doc


def per_key(day_deltas: Mapping[str, Mapping[DimKey, Sums]]) -> dict[DimKey, dict[str, Sums]]:
    """day -> key -> sums, turned into key -> day -> sums (what the totals merge)."""
    out: dict[DimKey, dict[str, Sums]] = {}
    for day, keys in day_deltas.items():
        for key, sums in keys.items():
            out.setdefault(key, {})[day] = sums
    return out


def merge_series(
    base: Mapping[str, Any] | None,
    doc_id: str,
    windows: Mapping[str, Mapping[str, Any]],
    batch_id: int,
) -> dict[str, Any]:
    """A run's ``series`` document of one UTC day (``doc_id`` = ``versions.series_id``) after
    ``batch_id``: its windows (by window key), the ones this batch changed replaced by their
    new versions, in time order (the run page's charts)."""
    merged = {w["key"]: dict(w) for w in (base or {}).get("windows") or []}
    merged.update({k: {"key": k, **w} for k, w in windows.items()})
    ordered = sorted(merged.values(), key=lambda w: (w["window_start_s"], w["host"]))
    run_id, _, day = doc_id.rpartition("|")
    return {"_id": doc_id, "run_id": run_id, "day": day, "batch_id": batch_id,
            "windows": ordered}  # fmt: skip
