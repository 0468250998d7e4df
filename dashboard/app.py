"""carbonpipe dashboard: Overview, Runs (with each run's page and the compare view), Budgets,
Grid & scheduling and Pipeline health, as one Streamlit multi-page app (``st.navigation``).

Run with ``carbonpipe dashboard``. Reads only the MongoDB hot store, through
``carbonpipe.query`` (one client per process). Sign-in (``dashboard.auth``) runs before any
page is drawn; with ``CARBONPIPE_DASHBOARD_SCOPE=own`` every page shows the viewer's runs only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from carbonpipe.core.config import get_settings
from dashboard.auth import require_login
from dashboard.safe import guarded
from dashboard.views import budgets, grid, health, overview, run, runs

settings = get_settings()
st.set_page_config(page_title="carbonpipe", page_icon="🌱", layout="wide")
viewer = require_login(st, settings)  # without credentials: the sign-in form, nothing else
st.title("carbonpipe — training energy and emissions")
st.caption(
    "Energy is **measured** where a hardware counter exists (RAPL, NVML) and **estimated** "
    "otherwise; the method says which. Intensity comes from the grid-intensity feed, else a "
    "host-reported value, else a cited annual average (counted as fallback)."
)


def _page(render: Callable[[Any, str | None], None], what: str) -> Callable[[], None]:
    def draw() -> None:
        guarded(what)(render)(settings, viewer)

    draw.__name__ = what.replace(" ", "_")
    return draw


PAGES = {
    "overview": st.Page(_page(overview.render, "the overview"), title="Overview",
                        url_path="overview", default=True, icon=":material/dashboard:"),
    "runs": st.Page(_page(runs.render, "the runs"), title="Runs", url_path="runs",
                    icon=":material/list:"),
    "run": st.Page(_page(run.render, "the run page"), title="Run", url_path="run",
                   icon=":material/search:"),
    "budgets": st.Page(_page(budgets.render, "the budgets"), title="Budgets", url_path="budgets",
                       icon=":material/savings:"),
    "grid": st.Page(_page(grid.render, "the grid page"), title="Grid & scheduling",
                    url_path="grid", icon=":material/bolt:"),
    "health": st.Page(_page(health.render, "the health page"), title="Pipeline health",
                      url_path="health", icon=":material/monitor_heart:"),
}  # fmt: skip
page = st.navigation(list(PAGES.values()))
if page is PAGES["overview"] and st.query_params.get("run"):  # the deep link ``/?run=ID``
    st.switch_page(PAGES["run"], query_params={"run": st.query_params["run"]})
page.run()
