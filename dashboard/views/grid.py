"""Grid & scheduling: intensity now and ahead per zone with its provenance, the greenest
window for a job length (the scheduler's own policy), realised savings of scheduled runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from carbonpipe.core.config import Settings
from carbonpipe.query import RunFilter, fetch_intensity, fetch_runs
from dashboard import grid_data as gd
from dashboard.advice import render as scheduling_advice
from dashboard.auth import visible_runs
from dashboard.data import decision_log
from dashboard.safe import guarded, hot_store_down, text_table
from dashboard.views import own_scope

SCHEDULED_SPAN = timedelta(days=30)  # scheduled runs looked at for realised savings
SCHEDULED_READ = 500  # runs of that span read at most


def render(settings: Settings, viewer: str | None) -> None:
    st.header("Grid & scheduling")
    now = datetime.now(timezone.utc)
    try:
        rows = fetch_intensity(settings)
    except Exception as exc:
        hot_store_down(st, exc)
        return
    zones = sorted({str(r.get("zone")) for r in rows})
    if not zones:
        st.caption("No grid-intensity data yet (is `carbonpipe feed` running?)")
    a, b = st.columns(2)
    duration_h = a.number_input("job length (h)", 0.5, 24.0, 2.0, 0.5, key="grid_len")
    horizon_h = b.radio("look ahead", [24, 48], horizontal=True, key="grid_h")
    out = []
    for zone in zones:
        zr = gd.zone_rows(rows, zone)
        cur = gd.current(zr, now)
        fc = gd.forecast(zr, now, timedelta(hours=int(horizon_h)))
        plan = gd.greenest(fc, float(duration_h) * 3600, int(horizon_h) * 3600) if fc else None
        out.append({
            "zone": zone,
            "now (g/kWh)": None if cur is None else cur.get("carbon_intensity_g_per_kwh"),
            "provider": None if cur is None else cur.get("provider"),
            "kind": None if cur is None else cur.get("kind"),
            "forecast ahead (h)": None if fc is None else round(fc.horizon_s() / 3600, 1),
            "greenest start (UTC)": None if plan is None else f"{plan.start:%Y-%m-%d %H:%M}",
            "its mean (g/kWh)": None if plan is None else round(plan.g_per_kwh, 1),
            "vs start now (%)": None if plan is None else round(-plan.reduction_pct, 1),
        })
    if out:
        st.subheader("Now and the greenest window per zone")
        st.table(pd.DataFrame(text_table(out)))
        st.caption("Greenest window: the scheduler's best_window policy over the intensity the "
                   "streaming job holds (forecast where the feed gave one; a replayed trace is "
                   "marked by its provider). The provider and kind say what each figure is.")
        gi = pd.DataFrame(rows)
        gi = gi[gi["end"] > now - timedelta(hours=24)]
        if not gi.empty:
            st.line_chart(gi.pivot_table(index="start", columns="zone",
                                         values="carbon_intensity_g_per_kwh"),
                          y_label="gCO₂e/kWh")  # fmt: skip
    guarded("the scheduling advice")(scheduling_advice)(st, settings.zone)
    _savings(settings, viewer, now)


def _savings(settings: Settings, viewer: str | None, now: datetime) -> None:
    st.subheader("Realised savings of scheduled runs")
    where = RunFilter(user=(viewer or "\0") if own_scope(settings) else None,
                      since=now - SCHEDULED_SPAN)  # fmt: skip
    try:
        runs = fetch_runs(settings, where=where, limit=SCHEDULED_READ)
    except Exception as exc:
        hot_store_down(st, exc)
        return
    pairs = []
    for r in visible_runs(viewer, runs, settings.dashboard_scope):
        log = decision_log(settings, r.get("schedule_decision_id"))
        if log:
            pairs.append((r, log))
    rows = gd.savings_rows(pairs)
    if not rows:
        st.caption(f"No scheduled runs among the newest {SCHEDULED_READ} of the last 30 days "
                   "(`carbonpipe schedule ... -- CMD` runs one).")
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True)
    saved = [x["saved vs start now (g)"] for x in rows if x["saved vs start now (g)"] is not None]
    st.metric("saved against starting at once (g, total)", f"{sum(saved):.3f}")
