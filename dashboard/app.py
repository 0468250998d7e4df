"""carbonpipe dashboard: per-run, per-user and per-model emissions, live power, grid intensity.

Run with ``carbonpipe dashboard`` (Streamlit). Reads only the MongoDB hot store.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from carbonpipe.core.config import get_settings
from carbonpipe.query import RunFilter, fetch_intensity, fetch_runs, fetch_totals, fetch_windows
from dashboard.advice import render as scheduling_advice
from dashboard.auth import require_login, visible_runs
from dashboard.data import (
    budget_rows,
    decision_log,
    power_series,
    run_summary,
    runs_table,
    scheduled_summary,
)
from dashboard.safe import guarded, hot_store_down

settings = get_settings()
PAGE_ROWS = 200  # runs listed (newest first); totals come from the rollups
st.set_page_config(page_title="carbonpipe", page_icon="🌱", layout="wide")
viewer = require_login(st, settings)  # without credentials: the sign-in form, nothing else
st.title("carbonpipe — training energy and emissions")
st.caption(
    "Energy is **measured** where a hardware counter exists (RAPL, NVML) and **estimated** "
    "otherwise; the method column says which. Intensity comes from the grid-intensity feed, "
    "else a host-reported value, else a cited annual average (counted as fallback)."
)


def model_rows(runs: list[Any]) -> list[dict[str, Any]]:
    """Per-model sums of a page of runs (own scope: the global model rollups would leak)."""
    out: dict[str, dict[str, Any]] = {}
    for r in runs:
        m = out.setdefault(
            r.get("model_name") or "",
            {"model_name": r.get("model_name"), "runs": 0, "energy_kwh": 0.0, "co2_g": 0.0},
        )
        m["runs"] += 1
        m["energy_kwh"] += r.get("energy_kwh") or 0.0
        m["co2_g"] += r.get("co2_g") or 0.0
    return list(out.values())


def team_tags(runs: list[Any]) -> set[str]:
    """``team=X`` tags of the viewer's runs (collect --tag team=X): their teams."""
    return {f"team={r['tags']['team']}" for r in runs if (r.get("tags") or {}).get("team")}


@st.fragment(run_every=settings.dashboard_refresh_s)
@guarded("the live section")
def live() -> None:
    # Each refresh reads the rollups and the rows on screen, never the history (issue 12).
    try:
        own = settings.dashboard_scope == "own"
        where = RunFilter(user=viewer or "\0") if own else None  # no identity: nothing
        runs = visible_runs(viewer, fetch_runs(settings, where=where, limit=PAGE_ROWS),
                            settings.dashboard_scope)  # fmt: skip
        users = [{"user_id": u["value"], **u} for u in fetch_totals(settings, "user")]
        if own:  # the viewer's own rollup row, and models from their own runs only
            users = [u for u in users if u["user_id"] == viewer]
            totals = users[0] if users else {}
            models = model_rows(runs)
        else:
            totals = next(iter(fetch_totals(settings, "all")), {})
            models = [{"model_name": m["value"], **m} for m in fetch_totals(settings, "model")]
    except Exception as exc:  # the page must say what is wrong, not crash (nor the URI)
        hot_store_down(st, exc)
        return
    if not runs:
        st.info("No runs yet. Start one: `carbonpipe collect --run-id R --user U --model M -- CMD`")
        return
    total_kwh = totals.get("energy_kwh") or 0.0
    total_g = totals.get("co2_g") or 0.0
    c1, c2, c3 = st.columns(3)
    c1.metric("runs", int(totals.get("runs") or 0))
    c2.metric("energy (kWh)", f"{total_kwh:.6f}")
    c3.metric("CO₂e (g)", f"{total_g:.3f}")

    st.subheader(f"Runs (newest {PAGE_ROWS})" if len(runs) >= PAGE_ROWS else "Runs")
    st.dataframe(pd.DataFrame(runs_table(runs)), hide_index=True, use_container_width=True)

    left, right = st.columns(2)
    with left:
        st.subheader("Per user")
        st.dataframe(
            pd.DataFrame(users)[["user_id", "runs", "energy_kwh", "co2_g"]], hide_index=True
        )
        budgets = settings.budgets_g
        if budgets:
            st.subheader("Budgets")
            st.dataframe(pd.DataFrame(budget_rows(users, budgets)), hide_index=True)
        if own:  # their teams' totals: the rollups of the team tags on their own runs
            teams = team_tags(runs)
            rows = [t for t in fetch_totals(settings, "tag") if t["value"] in teams]
            if rows:
                st.subheader("Your teams")
                st.dataframe(pd.DataFrame(rows)[["value", "runs", "energy_kwh", "co2_g"]]
                             .rename(columns={"value": "team"}), hide_index=True)  # fmt: skip
    with right:
        st.subheader("Per model")
        st.dataframe(
            pd.DataFrame(models)[["model_name", "runs", "energy_kwh", "co2_g"]], hide_index=True
        )

    st.subheader("Live power and emissions")
    run_ids = [r["run_id"] for r in runs]
    chosen = st.selectbox("run", run_ids, key="run")
    series = power_series(fetch_windows(settings, chosen))
    if series:
        df = pd.DataFrame(series).set_index("window_start")
        a, b = st.columns(2)
        a.line_chart(df[["power_w"]], y_label="mean power (W)")
        b.bar_chart(df[["co2_g"]], y_label="gCO₂e per window")
    run = next(r for r in runs if r["run_id"] == chosen)
    st.markdown(run_summary(run))
    if run.get("predicted_energy_kwh") is not None:  # the collector's, after its first epochs
        st.markdown(
            f"Predicted: {run['predicted_energy_kwh']:.4g} kWh / "
            f"{run.get('predicted_co2_g') or 0:.4g} gCO₂e after {run.get('predicted_epochs')} "
            f"epochs (rate {run.get('predicted_kwh_per_epoch') or 0:.4g} kWh/epoch)"
        )
    log = decision_log(settings, run.get("schedule_decision_id"))
    if log:
        st.markdown(scheduled_summary(log, run.get("co2_g") or 0.0))

    st.subheader("Grid carbon intensity")
    rows = fetch_intensity(settings)
    if rows:
        gi = pd.DataFrame(rows)
        gi = gi.pivot_table(index="start", columns="zone", values="carbon_intensity_g_per_kwh")
        st.line_chart(gi, y_label="gCO₂e/kWh")
    else:
        st.caption("no grid-intensity data yet (is `carbonpipe feed` running?)")


live()
guarded("the scheduling advice")(scheduling_advice)(st, settings.zone)
