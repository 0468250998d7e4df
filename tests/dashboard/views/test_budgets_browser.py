"""The Budgets page in a real browser (Debian's chromium via Playwright): a budget set through
the CLI over a hot store written by the job's own sink code shows its progress and forecast."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from carbonpipe.core.config import REPO_ROOT, Settings
from carbonpipe.services.apps import wait_http
from dashboard.cli import command
from spark_jobs.hot_store import HotStore
from tests.dashboard.test_dashboard_browser import ARTIFACTS, CHROMIUM, _free_port, launch
from tests.spark_jobs.test_hot_store_mongo import part

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture()
def dashboard(unique_topics: Settings) -> Iterator[str]:
    s = unique_topics
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    store = HotStore(s.mongo_uri, s.mongo_db)  # 2 kWh at 200 g/kWh: 400 g for "erin" today
    store.write_batch(0, [{**part("b-run", int(today.timestamp()), 2.0, 0), "user_id": "erin"}],
                      {"valid": 1})  # fmt: skip
    store.close()
    env = {**os.environ, "CARBONPIPE_MONGO_DB": s.mongo_db, "CARBONPIPE_MONGO_URI": s.mongo_uri}
    subprocess.run([sys.executable, "-m", "carbonpipe.cli", "budget", "set", "--scope",
                    "user:erin", "--period", "month", "--limit-g", "500"], env=env, check=True,
                   timeout=120)  # fmt: skip
    port = _free_port()
    proc = subprocess.Popen(command(port), cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        assert wait_http(f"http://127.0.0.1:{port}/_stcore/health", 90), "dashboard not up"
        yield f"http://127.0.0.1:{port}/budgets"
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt-get install -y chromium")
def test_budgets_page_shows_a_cli_budget_and_its_progress(dashboard: str) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(dashboard)
        line = page.get_by_text("400 of 500 gCO2e (80 %)")
        line.wait_for(timeout=60_000)
        assert "forecast" in line.inner_text()
        page.get_by_text("user:erin").first.wait_for()
        page.get_by_text("Above 80 % of the budget.").wait_for()
        page.screenshot(path=str(ARTIFACTS / "budgets.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "budgets.png").stat().st_size > 10_000
