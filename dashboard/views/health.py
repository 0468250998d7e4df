"""Pipeline health: events per minute, valid vs dead-lettered by reason, duplicates, late
events, Kafka lag, the last batch and its duration, intensity freshness per zone."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from carbonpipe.core.config import Settings
from carbonpipe.query import fetch_intensity, fetch_pipeline
from dashboard import health_data as hd
from dashboard.safe import hot_store_down
from dashboard.views import utc


def render(settings: Settings, viewer: str | None) -> None:
    st.header("Pipeline health")
    now = datetime.now(timezone.utc)
    try:
        doc = fetch_pipeline(settings)
        rows = fetch_intensity(settings)
    except Exception as exc:
        hot_store_down(st, exc)
        return
    counts = dict(doc.get("counts") or {})
    recent = list(doc.get("recent") or [])
    last = doc.get("last_batch") or {}
    c = st.columns(6)
    c[0].metric("events / min (last 5 min)", f"{hd.rate_per_minute(recent, now):.1f}")
    c[1].metric("valid (all time)", int(counts.get("valid", 0)))
    c[2].metric("dead-lettered", hd.dead_lettered(counts))
    c[3].metric("duplicates dropped", int(counts.get("duplicate", 0)))
    c[4].metric("late", int(counts.get("late", 0)))
    lag = last.get("kafka_lag")
    c[5].metric("Kafka lag (records)", "n/a" if lag is None else int(lag))
    st.text(f"last batch {last.get('batch_id', '-')} at {utc(last.get('at'))}, "
            f"{last.get('seconds', 0):.2f} s to the hot-store write, {last.get('events', 0)} "
            "events read" if last else "no batch recorded yet (is the streaming job running?)")
    left, right = st.columns(2)
    with left:
        st.subheader("Outcomes")
        st.dataframe(pd.DataFrame(hd.outcome_rows(counts)), hide_index=True)
    with right:
        st.subheader("Events per minute (recent batches)")
        pm = hd.per_minute(recent)
        if pm:
            st.bar_chart(pd.DataFrame(pm).set_index("minute")[["events", "valid"]],
                         stack=False)  # fmt: skip
    st.subheader("Intensity feed freshness")
    fresh = hd.freshness(rows, now)
    if fresh:
        st.dataframe(pd.DataFrame(fresh), hide_index=True, use_container_width=True)
    else:
        st.caption("no grid-intensity data yet (is `carbonpipe feed` running?)")
