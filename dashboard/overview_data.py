"""The Overview page's figures (pure: documents in, rows out; no Streamlit, no I/O).

Two sources, one shape. Unfiltered, every figure comes from the ``days`` rollup (the day's
sums per user, model, zone, host and tag ``k=v``), and over a range longer than two months
from the ``months`` rollup for its whole months: exact, and a year costs about what two months
do. The rollup has no cross-dimension sums (alice's energy *on model m*), so with any filter
the page reads the runs that started in the range instead (``carbonpipe.query.fetch_runs``,
bounded) and counts each run whole on the UTC day it started. Both become ``Entry`` rows, so
totals, per-day stacks and top-N lists are computed the same way from either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from carbonpipe.core.rollup_keys import (
    DIMENSIONS,
    calendar_days,
    dim_values,
    month_split,
    rolled,
)
from carbonpipe.query import RunFilter

# The figures the page sums: the runs the rollups count, and every figure they sum (each is
# carried by every run document too).
FIGURES = ("runs", *rolled())
RANGES = {"last 24 h": timedelta(hours=24), "last 7 days": timedelta(days=7),
          "last 30 days": timedelta(days=30), "last 365 days": timedelta(days=365)}  # fmt: skip
# A longer range is charted per month, and its whole UTC months are read from the ``months``
# buckets (a year: 12 buckets and the days at its edges instead of 365 day buckets).
MONTHLY_AFTER_DAYS = 62
CUSTOM = "custom"
DIMS = DIMENSIONS
MAX_FILTERED_RUNS = 5_000  # runs a filtered Overview reads at most (said on the page)
MAX_CACHED_DAYS = 4_000  # settled day and month buckets a dashboard process keeps


@dataclass(frozen=True)
class Period:
    """``since`` inclusive, ``until`` exclusive, UTC."""

    since: datetime
    until: datetime

    def previous(self) -> Period:
        """The period of the same length just before (for the change figures)."""
        return Period(self.since - (self.until - self.since), self.since)

    def days(self) -> int:
        return max(1, round((self.until - self.since).total_seconds() / 86_400))


def period_for(choice: str, now: datetime, custom: tuple[date, date] | None = None) -> Period:
    """The range a viewer picked: a span ending now, or whole UTC days ``first..last``."""
    if choice == CUSTOM:
        if custom is None:
            raise ValueError("a custom range needs its first and last day")
        first, last = sorted(custom)
        start = datetime.combine(first, time(), timezone.utc)
        return Period(start, datetime.combine(last, time(), timezone.utc) + timedelta(days=1))
    return Period(now - RANGES[choice], now)


def day_ids(period: Period) -> list[str]:
    """The UTC days ``period`` touches (``YYYY-MM-DD``), oldest first."""
    first = period.since.astimezone(timezone.utc).date()
    last = (period.until - timedelta(microseconds=1)).astimezone(timezone.utc).date()
    return calendar_days(first, last)


def granularity(period: Period) -> str:
    """``day`` or, for a range longer than ``MONTHLY_AFTER_DAYS``, ``month``."""
    return "month" if period.days() > MONTHLY_AFTER_DAYS else "day"


def bucket_ids(period: Period) -> tuple[list[str], list[str]]:
    """What to read for ``period``: (whole UTC months ``YYYY-MM`` from the ``months``
    buckets, the other days ``YYYY-MM-DD`` from ``days``); per day: no months."""
    days = day_ids(period)
    return ([], days) if granularity(period) == "day" else month_split(days)


def _month_end(month: str) -> datetime:
    first = datetime.strptime(month, "%Y-%m").replace(tzinfo=timezone.utc)
    return (first + timedelta(days=32)).replace(day=1)


def settled(bucket: str, now: datetime, lateness_s: float) -> bool:
    """A day (or month) no event can still reach (it ended more than the job's lateness ago,
    plus an hour): its bucket no longer changes and may be cached."""
    if len(bucket) == 7:
        end = _month_end(bucket)
    else:
        end = datetime.fromisoformat(bucket).replace(tzinfo=timezone.utc) + timedelta(days=1)
    return end + timedelta(seconds=lateness_s, hours=1) < now


@dataclass(frozen=True)
class Filters:
    """What the viewer narrowed the page to (``tag`` as ``k=v``); empty strings are unset."""

    user: str = ""
    model: str = ""
    tag: str = ""
    zone: str = ""
    host: str = ""

    def active(self) -> dict[str, str]:
        return {d: v for d in DIMS if (v := getattr(self, d))}

    def run_filter(self, period: Period) -> RunFilter:
        """What ``fetch_runs`` can narrow by itself; zone and host are ``matches``'s."""
        return RunFilter(user=self.user or None, model=self.model or None,
                         tags=(self.tag,) if self.tag else (), since=period.since,
                         until=period.until)  # fmt: skip

    def matches(self, run: Mapping[str, Any]) -> bool:
        """Zone and host (a run lists the zones and hosts it ran in)."""
        if self.zone and self.zone not in (run.get("zones") or []):
            return False
        return not (self.host and self.host not in (run.get("hosts") or []))


@dataclass(frozen=True)
class Entry:
    """Sums of one dimension value on one UTC day, or month (``day`` is then ``YYYY-MM``);
    ``dim`` ``all`` is the day's total."""

    day: str
    dim: str
    value: str
    sums: dict[str, float] = field(default_factory=dict)


def _sums(doc: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(doc.get(k) or 0.0) for k in FIGURES}


def rollup_entries(buckets: Iterable[Mapping[str, Any]], period: Period) -> list[Entry]:
    """Entries of the day and month buckets ``bucket_ids(period)`` names (whole UTC days),
    each on its day, or on its month where the period is charted per month."""
    months, days = bucket_ids(period)
    wanted = {*months, *days}
    monthly = granularity(period) == "month"
    out: list[Entry] = []
    for d in buckets:
        bucket = str(d.get("day") or d.get("month") or d.get("_id"))
        if bucket not in wanted:
            continue
        at = bucket[:7] if monthly else bucket
        out.append(Entry(at, "all", "all", _sums(d.get("total") or {})))
        out.extend(Entry(at, str(e["dim"]), str(e["value"]), _sums(e)) for e in d.get("by") or [])
    return out


def run_entries(runs: Iterable[Mapping[str, Any]], per: str = "day") -> list[Entry]:
    """Each run whole on the UTC day (``per`` month: month) it started (a run over midnight
    is not split)."""
    out: list[Entry] = []
    for r in runs:
        start = r.get("start")
        if not isinstance(start, datetime):
            continue
        day = start.astimezone(timezone.utc).strftime("%Y-%m" if per == "month" else "%Y-%m-%d")
        sums = {**_sums(r), "runs": 1.0}
        out.extend(Entry(day, d, v, sums) for d, v in dim_values(r))
    return out


def totals(entries: Iterable[Entry]) -> dict[str, float]:
    out = dict.fromkeys(FIGURES, 0.0)
    for e in entries:
        if e.dim == "all":
            for k in FIGURES:
                out[k] += e.sums.get(k, 0.0)
    return out


def change_pct(current: float, previous: float) -> float | None:
    """Change against the previous period in %, None when there was nothing before."""
    return None if previous == 0 else 100.0 * (current - previous) / previous


def _of(e: Entry, dim: str) -> str | None:
    """``e``'s group under ``dim`` (``tag:project`` groups the ``project=...`` tags)."""
    if dim.startswith("tag:"):
        key = dim[4:] + "="
        return e.value[len(key):] if e.dim == "tag" and e.value.startswith(key) else None
    return e.value if e.dim == dim else None


def column(dim: str) -> str:
    """The column a group of ``dim`` is shown under (``tag:project`` -> ``project``)."""
    return dim[4:] if dim.startswith("tag:") else dim


# The stacked chart shows this many groups, the rest summed as OTHER: more colours cannot be
# told apart, and the browser draws days x groups bars (200 users x 30 days: 6,000 bars and a
# legend of 200 names took about a second of the Overview's paint, bench/bench_scale.py).
STACKED_GROUPS = 9
OTHER = "(other)"


def per_day(entries: Iterable[Entry], by: str, figure: str = "co2_g",
            groups: int = STACKED_GROUPS) -> list[dict[str, Any]]:  # fmt: skip
    """``figure`` per day and group of ``by`` (long form: day, group, value), by day: the
    ``groups`` largest groups of the period by ``figure``, every other group as ``OTHER``."""
    acc: dict[tuple[str, str], float] = {}
    per_group: dict[str, float] = {}
    for e in entries:
        g = _of(e, by)
        if g is not None:
            v = e.sums.get(figure, 0.0)
            acc[(e.day, g)] = acc.get((e.day, g), 0.0) + v
            per_group[g] = per_group.get(g, 0.0) + v
    kept = set(sorted(per_group, key=lambda g: (-per_group[g], g))[:groups])
    if len(per_group) > len(kept):
        folded: dict[tuple[str, str], float] = {}
        for (d, g), v in acc.items():
            key = (d, g if g in kept else OTHER)
            folded[key] = folded.get(key, 0.0) + v
        acc = folded
    return [{"day": d, column(by): g, figure: v} for (d, g), v in sorted(acc.items())]


def top(entries: Iterable[Entry], by: str, n: int = 10, figure: str = "co2_g"
        ) -> list[dict[str, Any]]:  # fmt: skip
    """The ``n`` largest groups of ``by`` by ``figure``, with their runs and energy."""
    acc: dict[str, dict[str, float]] = {}
    for e in entries:
        g = _of(e, by)
        if g is None:
            continue
        cur = acc.setdefault(g, dict.fromkeys(("runs", "energy_kwh", "co2_g"), 0.0))
        for k in cur:
            cur[k] += e.sums.get(k, 0.0)
    order = sorted(acc, key=lambda g: (-acc[g].get(figure, 0.0), g))[:n]
    return [{column(by): g, "runs": int(acc[g]["runs"]), "energy_kwh": acc[g]["energy_kwh"],
             "co2_g": acc[g]["co2_g"]} for g in order]  # fmt: skip


def shares(t: Mapping[str, float]) -> dict[str, float | None]:
    """Of the energy: measured, estimated, and charged a fallback intensity, in %."""
    e = t.get("energy_kwh") or 0.0
    return {k: (100.0 * (t.get(f"{k}_kwh") or 0.0) / e if e > 0 else None)
            for k in ("measured", "estimated", "fallback")}  # fmt: skip


def tag_keys(values: Iterable[str]) -> list[str]:
    """The tag keys among ``k=v`` tag values (project, team...)."""
    return sorted({v.partition("=")[0] for v in values if "=" in v})


def options(totals_rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Filter choices per dimension, from the all-time ``totals`` rows (one per value)."""
    out: dict[str, list[str]] = {d: [] for d in DIMS}
    for r in totals_rows:
        if r.get("dim") in out:
            out[str(r["dim"])].append(str(r["value"]))
    return {d: sorted(set(v)) for d, v in out.items()}


def options_from_runs(runs: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Filter choices from runs (own scope: the all-time totals would name other users'
    models, tags, zones and hosts)."""
    return options([{"dim": d, "value": v} for r in runs for d, v in dim_values(r)])
