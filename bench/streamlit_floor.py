"""A Streamlit page with the Overview's kinds of elements and no data reads: what Streamlit
itself costs to paint on this machine (``bench/bench_scale.py`` times it beside the Overview,
same browser, same minutes). Header, 5 metrics, a radio, 6 select boxes, a stacked bar chart
of 30 days x 10 groups, 4 tables, a horizontal bar chart, and "Emissions per zone" last."""

from __future__ import annotations

import pandas as pd
import streamlit as st

st.set_page_config(page_title="floor", layout="wide")
st.title("carbonpipe — training energy and emissions")
st.header("Overview")
st.radio("range", ["last 7 days", "last 30 days", "last 365 days"], index=1, horizontal=True)
for col, dim in zip(st.columns(5), ("user", "model", "zone", "project", "team"), strict=True):
    col.selectbox(dim, ["(all)", "a", "b"])
for col, label in zip(st.columns(5), ("energy (kWh)", "CO₂e (g)", "runs", "GPU-hours", "GPU kWh"),
                      strict=True):  # fmt: skip
    col.metric(label, "1.000", "+1.0 % vs previous period", delta_color="inverse")
st.selectbox("stack emissions per day by", ["user", "model"])
days = [f"2026-11-{d:02d}" for d in range(1, 31)]
st.bar_chart(pd.DataFrame({f"g{g}": [float(g + d % 7) for d in range(30)] for g in range(10)},
                          index=days), stack=True)  # fmt: skip
table = pd.DataFrame({"user": [f"user-{i}" for i in range(10)], "runs": [str(i) for i in range(10)],
                      "co2_g": [f"{i * 1.5:.3f}" for i in range(10)]})  # fmt: skip
for col in st.columns(3):
    col.table(table)
st.subheader("Emissions per zone")
st.bar_chart(pd.DataFrame({"co2_g": [3.0, 2.0, 1.0, 0.5]}, index=["GB", "DE", "FR", "US"]),
             horizontal=True)
st.table(table.head(4))
