"""One run (deep link ``?run=ID``): power per device, intensity, cumulative CO2e, epochs,
provenance, what was not counted, equivalents and cost, and a scheduled run's
decision."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from carbonpipe.core.config import Settings
from carbonpipe.query import fetch_run, fetch_windows
from dashboard import run_data as rd
from dashboard.auth import visible_runs
from dashboard.data import decision_log, run_summary, scheduled_summary
from dashboard.safe import hot_store_down, text_table
from dashboard.views import utc


def render(settings: Settings, viewer: str | None) -> None:
    st.header("Run")
    run_id = st.query_params.get("run") or ""
    picked = st.text_input("run id", value=run_id, key="run_id_input")
    if picked and picked != run_id:
        st.query_params["run"] = picked
        run_id = picked
    if not run_id:
        st.info("Open a run from the Runs page, or type its id.")
        return
    try:
        doc = fetch_run(settings, run_id)
        if doc is not None and not visible_runs(viewer, [doc], settings.dashboard_scope):
            doc = None  # another user's run in own scope: as if it did not exist
        windows = fetch_windows(settings, run_id, doc) if doc is not None else []
    except Exception as exc:
        hot_store_down(st, exc)
        return
    if doc is None:
        st.warning("No such run (or not yours).")
        return
    st.markdown(run_summary(doc))
    st.text(f"started {utc(doc.get('start'))} · ended {utc(doc.get('end'))} · "
            f"{doc.get('duration_s') or 0:.0f} s")
    _charts(windows)
    _epochs(windows)
    left, right = st.columns(2)
    with left:
        st.subheader("Provenance")
        st.table(pd.DataFrame(text_table(rd.provenance(doc))))
    with right:
        st.subheader("Delivery")
        st.table(pd.DataFrame(text_table([{"what": k, "events": v}
                                           for k, v in rd.delivery(doc).items()])))
    _equivalents(settings, doc, windows)
    if doc.get("predicted_energy_kwh") is not None:
        st.text(f"Predicted by the collector: {doc['predicted_energy_kwh']:.4g} kWh / "
                f"{doc.get('predicted_co2_g') or 0:.4g} gCO₂e for {doc.get('predicted_epochs')} "
                f"epochs ({doc.get('predicted_kwh_per_epoch') or 0:.4g} kWh/epoch)")
    log = decision_log(settings, doc.get("schedule_decision_id"))
    if log:
        st.subheader("Scheduling decision")
        st.markdown(scheduled_summary(log, doc.get("co2_g") or 0.0))


def _charts(windows: list[dict[str, Any]]) -> None:
    if not windows:
        st.caption("No windows yet.")
        return
    st.subheader("Power per device")
    rows = rd.device_power(windows)
    st.area_chart(pd.DataFrame(rows).set_index("window_start"), y_label="mean power (W)",
                  stack=True)  # fmt: skip
    st.text("mean power per device over the run: " + ", ".join(
        f"{label.removesuffix(' (W)')} {w:.1f} W" for label, w in rd.mean_power(rows).items()))
    a, b = st.columns(2)
    ic = pd.DataFrame(rd.intensity_and_cumulative(windows)).set_index("window_start")
    a.subheader("Grid intensity charged")
    a.line_chart(ic[["intensity (g/kWh)"]], y_label="gCO₂e/kWh")
    b.subheader("Cumulative CO₂e")
    b.line_chart(ic[["cumulative gCO₂e"]], y_label="gCO₂e")


def _epochs(windows: list[dict[str, Any]]) -> None:
    rows = rd.per_epoch(windows)
    st.subheader("Per epoch")
    if not rows:
        st.caption("The run reported no epochs (framework callbacks: see collector/progress.py).")
        return
    st.caption("A window that spans an epoch boundary is split evenly over the epochs it "
               f"touches (windows are {windows[0].get('window_s')} s).")
    with st.container(key="epochs"):  # a stable handle (CSS class st-key-epochs) for tests
        st.table(pd.DataFrame(text_table([
            {"epoch": str(r["epoch"]), "energy (kWh)": f"{r['energy_kwh']:.6f}",
             "CO₂e (g)": f"{r['co2_g']:.4f}", "last step": str(r["last_step"] or "-"),
             "windows": str(r["windows"])} for r in rows])))  # fmt: skip


def _equivalents(settings: Settings, doc: dict[str, Any], windows: list[dict[str, Any]]) -> None:
    """Everyday equivalents of the run's CO2e and the cost of its energy per zone's price, both
    after the data centre's overhead (PUE, when set), each factor with its source."""
    from carbonpipe.reporting import equivalents as eq

    pue = settings.pue
    co2_g = eq.facility(float(doc.get("co2_g") or 0.0), pue)
    kwh_by_zone: dict[str, float] = {}
    for w in windows:
        zone = str(w.get("zone") or "?")
        kwh_by_zone[zone] = kwh_by_zone.get(zone, 0.0) + eq.facility(
            float(w.get("energy_kwh") or 0.0), pue)
    table = eq.load_equivalents()
    per_currency, unpriced = eq.cost(kwh_by_zone, eq.load_prices(settings.electricity_prices_path))
    st.subheader("Equivalents and cost")
    if pue != 1.0:
        st.text(f"With the data centre's overhead: PUE {pue:g} (CARBONPIPE_PUE).")
    rows = [{"equivalent": e.name, "amount": f"{co2_g / e.g_co2e_per_unit:.3g} {e.unit}",
             "source": e.source} for e in table]  # fmt: skip
    rows += [{"equivalent": "electricity cost", "amount": f"{v:.4g} {cur}", "source":
              "data/electricity_prices.csv"} for cur, v in per_currency.items()]  # fmt: skip
    rows += [{"equivalent": "electricity cost", "amount": f"no price for {z} ({kwh:.4g} kWh)",
              "source": "-"} for z, kwh in unpriced.items()]  # fmt: skip
    st.table(pd.DataFrame(text_table(rows)))
