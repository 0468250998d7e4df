"""Budgets page: each budget's use this period, its forecast, and the alerts it raised.

``render(settings, viewer)`` draws it (the app's ``st.navigation`` calls it after
``require_login``); run as a script (``streamlit run dashboard/views/budgets.py``) it signs the
viewer in and renders itself. With ``CARBONPIPE_DASHBOARD_SCOPE=own`` a viewer sees only the
budgets of their own user id (a tag's or the organisation's use would show others' figures).
Scopes and ids are user text: shown with ``st.text``/tables or ``md``, never as Markdown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from carbonpipe.core.config import Settings
from carbonpipe.reporting.budgets import Status

ALERT_COLS = ("at", "scope", "period", "period_key", "threshold_pct", "used", "limit", "unit",
              "published", "webhook")  # fmt: skip


def visible(statuses: Iterable[Status], viewer: str | None, scope: str) -> list[Status]:
    """The budgets ``viewer`` may see: all with scope ``all``; else only ``user:<viewer>``
    (and none without a viewer: a missing identity never widens the view)."""
    out = list(statuses)
    if scope == "all":
        return out
    return [s for s in out if viewer is not None and s.budget.scope.dim == "user"
            and s.budget.scope.value == viewer]  # fmt: skip


def progress_line(s: Status) -> str:
    """Figures only (no user text): safe inside Streamlit's Markdown-rendered labels."""
    b = s.budget
    fc = ("" if s.forecast is None
          else f" · forecast {s.forecast:,.4g} {b.unit} ({100 * (s.forecast_fraction or 0):.0f} %)"
          " at the period's end at the current rate")  # fmt: skip
    return f"{s.used:,.4g} of {b.limit:,.4g} {b.unit} ({100 * s.fraction:.0f} %){fc}"


def alert_rows(alerts: Iterable[Mapping[str, Any]], ids: set[str]) -> list[dict[str, Any]]:
    return [{k: a.get(k) for k in ALERT_COLS} for a in alerts if a.get("budget_id") in ids]


def render(settings: Settings, viewer: str | None) -> None:
    import pandas as pd
    import streamlit as st

    from carbonpipe.reporting import alerts
    from carbonpipe.reporting.equivalents import equivalents, load_equivalents
    from dashboard.safe import hot_store_down, md

    st.header("Budgets")
    st.caption("Use this UTC period from the day rollups, alerts at 80 % and 100 % (Kafka "
               "topic and webhook, once per crossing). Set them with `carbonpipe budget set`.")
    if settings.pue != 1.0:
        st.caption(f"Facility figures: IT energy and emissions x PUE {settings.pue:g}.")
    try:
        statuses = visible(alerts.statuses(settings), viewer, settings.dashboard_scope)
        records = alerts.recent(settings, limit=200)
    except Exception as exc:  # pymongo's errors: the page says so without the URI
        hot_store_down(st, exc)
        return
    if not statuses:
        st.info("No budgets yet: `carbonpipe budget set --scope user:NAME --period month "
                "--limit-g 5000` (or CARBONPIPE_BUDGETS_G for all-time per-user budgets).")
    table = load_equivalents()
    for s in statuses:
        b = s.budget
        st.markdown(f"**{md(b.scope)}** · per {b.period} ({md(s.period.key)})"
                    + (" · from CARBONPIPE_BUDGETS_G" if b.origin == "env" else ""))
        st.progress(min(max(s.fraction, 0.0), 1.0), text=progress_line(s))
        if s.fraction >= 1.0:
            st.error("Over budget.")
        elif s.fraction >= 0.8:
            st.warning("Above 80 % of the budget.")
        elif s.forecast_fraction is not None and s.forecast_fraction > 1.0:
            st.warning("On course to exceed the budget by the period's end.")
        if b.metric == "co2_g":
            eq = equivalents(s.used, table)
            st.caption(f"≈ {eq['car_km']:,.3g} km by car · {eq['smartphone_charges']:,.3g} "
                       f"smartphone charges · {eq['tree_months']:,.3g} tree-months (US EPA)")
    st.subheader("Recent alerts")
    rows = alert_rows(records, {s.budget.id for s in statuses})
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    else:
        st.caption("None yet.")


if __name__ == "__main__":  # `streamlit run dashboard/views/budgets.py`
    import streamlit as st

    from carbonpipe.core.config import get_settings
    from dashboard.auth import require_login

    _settings = get_settings()
    render(_settings, require_login(st, _settings))
