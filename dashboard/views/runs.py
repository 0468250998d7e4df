"""Runs: a searchable, sortable table read page by page (``fetch_runs`` stops once the page
is full), links to each run's page, and the compare view of two to five runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from carbonpipe.core.config import Settings
from carbonpipe.query import SORTS, RunFilter, fetch_run, fetch_runs
from dashboard.auth import visible_runs
from dashboard.data import runs_table
from dashboard.run_data import MAX_COMPARE, compare_table
from dashboard.safe import hot_store_down, md, text_table
from dashboard.views import own_scope, run_link

PAGE_SIZES = (25, 50, 100)
SPANS = {"last 7 days": 7, "last 30 days": 30, "last 365 days": 365}


def render(settings: Settings, viewer: str | None) -> None:
    st.header("Runs")
    a, b, c, d, e = st.columns([2, 2, 2, 2, 1])
    user = a.text_input("user", key="runs_user") if not own_scope(settings) else viewer
    model = b.text_input("model", key="runs_model")
    tag = c.text_input("tag (k=v)", key="runs_tag")
    text = d.text_input("run id contains", key="runs_text")
    sort = e.selectbox("sort by (largest first)", SORTS, key="runs_sort")
    f, g, h = st.columns([2, 1, 1])
    span = f.radio("started", list(SPANS), index=1, horizontal=True, key="runs_span")
    size = g.selectbox("rows per page", PAGE_SIZES, key="runs_size")
    page = int(h.number_input("page", min_value=1, value=1, step=1, key="runs_page"))
    if tag and ("=" not in tag or tag.startswith("=")):
        st.warning("tag: give key=value, e.g. project=vision")
        tag = ""
    now = datetime.now(timezone.utc)
    where = RunFilter(user=(viewer or "\0") if own_scope(settings) else (user or None),
                      model=model or None, tags=(tag,) if tag else (),
                      since=now - timedelta(days=SPANS[str(span)]))  # fmt: skip
    want = page * int(size)
    try:
        # newest first: only the hours up to this page are read; another sort or a search
        # reads the range's runs (the range bounds it)
        limit = want if sort == "start" and not text else None
        runs = fetch_runs(settings, where=where, limit=limit, sort=str(sort))
    except Exception as exc:
        hot_store_down(st, exc)
        return
    listed = [r for r in visible_runs(viewer, runs, settings.dashboard_scope)
              if not text or text in str(r.get("run_id"))]  # fmt: skip
    shown = listed[want - int(size):want]
    more = len(listed) > want or (limit is not None and len(listed) >= want)
    st.caption(f"page {page}: runs {want - int(size) + 1 if shown else 0}–"
               f"{want - int(size) + len(shown)}" + (" (more on the next page)" if more else ""))
    if shown:
        table = pd.DataFrame(runs_table(shown))
        table.insert(1, "page", [run_link(str(r["run_id"])) for r in shown])
        st.dataframe(table, hide_index=True, use_container_width=True,
                     column_config={"page": st.column_config.LinkColumn(
                         "open", display_text="open run")})  # fmt: skip
    else:
        st.info("No runs match.")
    _compare(settings, viewer, [str(r["run_id"]) for r in shown])


def _compare(settings: Settings, viewer: str | None, on_page: list[str]) -> None:
    st.subheader("Compare runs")
    chosen = st.multiselect(f"two to {MAX_COMPARE} runs", on_page, max_selections=MAX_COMPARE,
                            key="compare")  # fmt: skip
    if len(chosen) < 2:
        st.caption("Pick at least two runs of this page.")
        return
    try:
        docs = [d for rid in chosen if (d := fetch_run(settings, rid)) is not None]
    except Exception as exc:
        hot_store_down(st, exc)
        return
    docs = [dict(d) for d in visible_runs(viewer, docs, settings.dashboard_scope)]
    # a table, not a grid: every figure of every run readable at once (and by the tests)
    st.table(pd.DataFrame(text_table(compare_table(docs))).set_index(md("figure")))
