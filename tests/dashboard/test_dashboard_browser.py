"""The dashboard in a real browser (Debian's chromium driven by Playwright), over real data
written to the MongoDB-compatible server by the streaming job's own sink code."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import REPO_ROOT, Settings
from carbonpipe.services.apps import wait_http
from dashboard.cli import command
from spark_jobs.hot_store import HotStore

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
pytestmark = [pytest.mark.browser, pytest.mark.integration]


def launch(pw: Any) -> Any:
    """Debian's chromium, headless, quiet (the one launch every browser test uses)."""
    return pw.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run"],
    )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def window(ws: int, kwh: float, g: float) -> dict[str, object]:
    return dict(
        run_id="browser-run-1", user_id="dora", model_name="vit-tiny", host="h1", zone="GB",
        window_start_s=ws, window_s=60, energy_kwh=kwh, cpu_kwh=kwh, gpu_kwh=0.0, ram_kwh=0.0,
        measured_kwh=kwh, estimated_kwh=0.0, co2_g=g, fallback_kwh=0.0, forecast_kwh=0.0,
        covered_s=60.0, n_events=60, first_ts_s=ws, last_ts_s=ws + 59, min_seq=0, max_seq=59,
        sum_cpu_utilization_pct=3000.0, max_gpu_mem_used_mb=None, max_ram_used_mb=100.0,
        ended=0, schedule_decision_id=None, intensity_providers=["trace"],
    )  # fmt: skip


@pytest.fixture()
def dashboard(unique_topics: Settings) -> Iterator[tuple[str, Settings]]:
    s = unique_topics
    store = HotStore(s.mongo_uri, s.mongo_db)
    store.write_batch(0, [window(1_760_000_040, 0.0125, 2.5)], {"valid": 60})
    store.write_batch(1, [window(1_760_000_100, 0.0075, 2.25)], {"valid": 60})
    store.close()
    port = _free_port()
    env = {**os.environ, "CARBONPIPE_MONGO_DB": s.mongo_db, "CARBONPIPE_DASHBOARD_REFRESH_S": "2"}
    if s.mongo_uri:
        env["CARBONPIPE_MONGO_URI"] = s.mongo_uri
    proc = subprocess.Popen(command(port), cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        assert wait_http(f"http://127.0.0.1:{port}/_stcore/health", 90), "dashboard not up"
        yield f"http://127.0.0.1:{port}/", s
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt-get install -y chromium")
def test_dashboard_shows_the_run_and_its_figures(dashboard: tuple[str, Settings]) -> None:
    from playwright.sync_api import sync_playwright

    url, _ = dashboard
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(url + "?run=browser-run-1")  # the run page's deep link
        # 0.0125 + 0.0075 kWh and 2.5 + 2.25 g, merged by the sink: 0.02 kWh, 4.75 g, 237.5 g/kWh
        summary = page.get_by_text("browser-run-1 (dora, vit-tiny)")
        summary.wait_for(timeout=60_000)
        text = summary.inner_text()
        assert "0.020000 kWh" in text and "4.750 gCO₂e" in text, text
        assert "237.5 g/kWh" in text and "measured" in text, text
        page.get_by_text("mean power per device").first.wait_for()
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt-get install -y chromium")
def test_deep_link_is_the_first_request_of_a_fresh_dashboard(
    dashboard: tuple[str, Settings],
) -> None:
    """``/run?run=ID`` opened before any other page of a just-started dashboard shows the run
    (a ``pages/`` folder next to the app made Streamlit serve a blank page until app.py ran)."""
    from playwright.sync_api import sync_playwright

    url, _ = dashboard  # a fresh process; only its health endpoint was asked so far
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(url + "run?run=browser-run-1")
        summary = page.get_by_text("browser-run-1 (dora, vit-tiny)")
        summary.wait_for(timeout=60_000)
        assert "0.020000 kWh" in summary.inner_text()
        assert page.url.rstrip("/").endswith("run?run=browser-run-1"), page.url
        browser.close()
