"""Overview: totals with their change, emissions per day, top users/models/projects, zones,
and the shares of measured energy and fallback intensity, for a range and filters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from carbonpipe.core.config import Settings
from carbonpipe.query import (
    RunFilter,
    fetch_all_totals,
    fetch_buckets_by_id,
    fetch_runs,
    read_models_version,
)
from dashboard import overview_data as od
from dashboard.auth import visible_runs
from dashboard.safe import hot_store_down, text_table
from dashboard.views import own_scope


def _controls(settings: Settings, viewer: str | None, opts: dict[str, list[str]]
              ) -> tuple[od.Period, od.Filters]:  # fmt: skip
    now = datetime.now(timezone.utc)
    a, b = st.columns([1, 2])
    choice = a.radio("range", [*od.RANGES, od.CUSTOM], index=1, horizontal=True, key="ov_range")
    custom = None
    if choice == od.CUSTOM:
        today = now.date()
        picked = b.date_input("days (UTC)", (today - timedelta(days=30), today), key="ov_days")
        if isinstance(picked, (list, tuple)) and len(picked) == 2:
            custom = (picked[0], picked[1])
        elif isinstance(picked, date):
            custom = (picked, picked)
        else:
            custom = (today, today)
    period = od.period_for(str(choice), now, custom)
    cols = st.columns(5)
    chosen: dict[str, str] = {}
    for col, dim in zip(cols, od.DIMS, strict=True):
        values = opts.get(dim) or []
        if dim == "user" and own_scope(settings):
            chosen[dim] = viewer or "\0"  # own scope: always the viewer's own runs
            col.text(f"user: {viewer}")
            continue
        pick = col.selectbox(dim, ["(all)", *values], key=f"ov_{dim}")
        chosen[dim] = "" if pick in (None, "(all)") else str(pick)
    return period, od.Filters(**chosen)


def _entries(settings: Settings, viewer: str | None, period: od.Period, f: od.Filters,
             buckets: list[dict[str, Any]]) -> tuple[list[od.Entry], int, bool]:  # fmt: skip
    """The entries of ``period``: from the day and month buckets unfiltered, else from its
    runs."""
    if not f.active():
        return od.rollup_entries(buckets, period), -1, False
    runs = fetch_runs(settings, where=f.run_filter(period), limit=od.MAX_FILTERED_RUNS)
    hit_limit = len(runs) >= od.MAX_FILTERED_RUNS
    mine = [r for r in visible_runs(viewer, runs, settings.dashboard_scope) if f.matches(r)]
    return od.run_entries(mine, od.granularity(period)), len(mine), hit_limit


@st.cache_resource(show_spinner=False)
def _settled_days() -> dict[tuple[str, str], dict[str, Any] | None]:
    """(database, day or month) -> a bucket no event can change any more (None: no figures),
    kept for the process: a year's Overview reads its settled buckets once, not per view."""
    return {}


def _buckets(settings: Settings, days: list[str]) -> list[dict[str, Any]]:
    """The day and month buckets of ``days`` (ids of either): settled ones from the process
    cache, the others (and settled ones not seen yet) in one ``fetch_buckets_by_id`` call."""
    now = datetime.now(timezone.utc)
    cache, db = _settled_days(), settings.mongo_db
    missing = [d for d in days if (db, d) not in cache]
    got = fetch_buckets_by_id(settings, missing) if missing else {}
    if len(cache) > od.MAX_CACHED_DAYS:  # bounded: many databases or decades of history
        cache.clear()
    for d in missing:
        if od.settled(d, now, settings.lateness_s):
            cache[(db, d)] = got.get(d)
    out = (cache[(db, d)] if (db, d) in cache else got.get(d) for d in days)
    return [b for b in out if b is not None]


T = TypeVar("T")
MAX_SHARED = 64  # entries of ``_shared``: ranges x databases in use at once


@st.cache_resource(show_spinner=False)
def _shared() -> dict[tuple[str, str], tuple[Any, Any]]:
    """(database, what) -> (the read models' version it was built at, the value): what any
    viewer's Overview read last, for the whole process."""
    return {}


def _unchanged(settings: Settings, what: str, version: Any, build: Callable[[], T]) -> T:
    """``build()``, or what it gave at the same read-models version (``read_models_version``):
    a view or refresh after which no micro-batch changed the rollups costs one small read
    instead of the totals and the buckets (issue 12: the page's cost must not follow the
    history, and a refresh must not recompute what did not change)."""
    cache, key = _shared(), (settings.mongo_db, what)
    hit = cache.get(key)
    if version is not None and hit is not None and hit[0] == version:
        return hit[1]
    value = build()
    if len(cache) >= MAX_SHARED:
        cache.clear()
    cache[key] = (version, value)
    return value


def render(settings: Settings, viewer: str | None) -> None:
    st.header("Overview")
    try:
        version = read_models_version(settings)
        if own_scope(settings):  # choices from the viewer's own runs only
            # not kept: up to MAX_FILTERED_RUNS runs per viewer would stay in the process
            mine = fetch_runs(settings, where=RunFilter(user=viewer or "\0"),
                              limit=od.MAX_FILTERED_RUNS)  # fmt: skip
            opts = od.options_from_runs(visible_runs(viewer, mine, settings.dashboard_scope))
        else:
            opts = _unchanged(settings, "options", version,
                              lambda: od.options(fetch_all_totals(settings)))
    except Exception as exc:
        hot_store_down(st, exc)
        return
    period, f = _controls(settings, viewer, opts)
    try:
        # unfiltered: the buckets of both periods in one read
        ids = [i for p in (period.previous(), period) for part in od.bucket_ids(p) for i in part]
        ids = list(dict.fromkeys(ids))
        buckets = [] if f.active() else _unchanged(
            settings, "buckets:" + ",".join(ids), version, lambda: _buckets(settings, ids))
        cur, n_runs, capped = _entries(settings, viewer, period, f, buckets)
        prev, _, _ = _entries(settings, viewer, period.previous(), f, buckets)
    except Exception as exc:
        hot_store_down(st, exc)
        return
    if f.active():
        st.caption(
            f"Filtered ({', '.join(f'{k}={v}' for k, v in f.active().items())}): figures are "
            f"summed from the {n_runs} runs that started in the range (each run counted whole "
            "on the UTC day it started; a run in two zones counts in both zone bars), because "
            "the daily rollups hold sums per user, model, tag, zone and host but not their "
            f"combinations. At most {od.MAX_FILTERED_RUNS:,} runs are read."
            + (" **This range has more: narrow it.**" if capped else "")
        )
    else:
        rollups = "monthly and daily" if od.granularity(period) == "month" else "daily"
        st.caption(f"Unfiltered: every figure comes from the {rollups} rollups (whole UTC days "
                   f"{period.since:%Y-%m-%d} to {period.until - timedelta(seconds=1):%Y-%m-%d}).")
    _figures(cur, prev, od.granularity(period))


def _metric(col: Any, label: str, value: float, before: float, fmt: str) -> None:
    change = od.change_pct(value, before)
    col.metric(label, format(value, fmt),
               None if change is None else f"{change:+.1f} % vs previous period",
               delta_color="inverse")


def _figures(cur: list[od.Entry], prev: list[od.Entry], per: str) -> None:
    t, p = od.totals(cur), od.totals(prev)
    c = st.columns(5)
    _metric(c[0], "energy (kWh)", t["energy_kwh"], p["energy_kwh"], ".6f")
    _metric(c[1], "CO₂e (g)", t["co2_g"], p["co2_g"], ".3f")
    _metric(c[2], "runs", t["runs"], p["runs"], ".0f")
    _metric(c[3], "GPU-hours", t["gpu_hours"], p["gpu_hours"], ".3f")
    _metric(c[4], "GPU energy (kWh)", t["gpu_kwh"], p["gpu_kwh"], ".6f")
    if not t["runs"] and not t["energy_kwh"]:
        st.info("No runs in this range. Start one: "
                "`carbonpipe collect --run-id R --user U --model M -- CMD`")
        return
    s = od.shares(t)
    st.text("energy measured {}, estimated {}; charged a fallback intensity {}".format(
        *(f"{v:.1f} %" if v is not None else "n/a" for v in s.values())))

    tags = od.tag_keys(e.value for e in cur if e.dim == "tag")
    by = st.selectbox(f"stack emissions per {per} by",
                      ["user", "model", *(f"tag:{k}" for k in tags)], key="ov_by")  # fmt: skip
    rows = od.per_day(cur, str(by))
    if rows:
        df = pd.DataFrame(rows).pivot_table(index="day", columns=od.column(str(by)), values="co2_g",
                                            aggfunc="sum", fill_value=0.0)  # fmt: skip
        df.index.name = per
        st.bar_chart(df, y_label=f"gCO₂e per {per}", stack=True)

    groups = [("user", "Top users"), ("model", "Top models"),
              *((f"tag:{k}", f"Top {k}s") for k in tags if k in ("project", "team"))]
    cols = st.columns(len(groups))
    for col, (dim, title) in zip(cols, groups, strict=True):
        col.subheader(title)
        _table(col, od.top(cur, dim))
    st.subheader("Emissions per zone")
    zones = od.top(cur, "zone", n=50)
    if zones:
        st.bar_chart(pd.DataFrame(zones).set_index("zone")[["co2_g"]], y_label="gCO₂e",
                     horizontal=True)
        _table(st, zones)


def _table(where: Any, rows: list[dict[str, Any]]) -> None:
    """A short ranked list as a plain table (names as text, figures formatted)."""
    if not rows:
        where.caption("none")
        return
    shown = [{k: (f"{v:.6f}" if k == "energy_kwh" else f"{v:.3f}" if k == "co2_g" else v)
              for k, v in r.items()} for r in rows]  # fmt: skip
    where.table(pd.DataFrame(text_table(shown)))
