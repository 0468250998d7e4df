"""The dashboard's security in a real browser (Debian's chromium via Playwright) against the
real MongoDB-compatible server: with login on, a session without credentials sees nothing;
signed in, an attacker-chosen run id renders as text (no link, no remote image); with MongoDB
down and a password in its URI, the page shows neither the password nor a traceback."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import REPO_ROOT, Settings
from carbonpipe.services.apps import wait_http
from dashboard.auth import hash_password
from dashboard.cli import command
from spark_jobs.hot_store import HotStore
from tests.dashboard.test_dashboard_browser import CHROMIUM, _free_port, launch, window

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt-get install -y chromium"),
]
EVIL_ID = "[click](https://evil.example/x) ![px](https://evil.example/p.png)"
PASSWORD = "pw-for-dora"
SECRET = "S3cr3tPw"


def _serve(env_over: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CARBONPIPE_DASHBOARD") and k not in ("MONGO_URI",)}  # fmt: skip
    env.update({"CARBONPIPE_DASHBOARD_REFRESH_S": "2", **env_over})
    proc = subprocess.Popen(command(port, "127.0.0.1"), cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    try:
        assert wait_http(f"http://127.0.0.1:{port}/_stcore/health", 90), "dashboard not up"
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
        assert SECRET.encode() not in err  # the server log gets the incident, redacted


def _browser(pw: Any) -> Any:
    return launch(pw)


@pytest.fixture()
def login_dashboard(unique_topics: Settings, tmp_path: Path) -> Iterator[str]:
    s = unique_topics
    store = HotStore(s.mongo_uri, s.mongo_db)
    store.write_batch(0, [{**window(1_760_000_040, 0.0125, 2.5), "run_id": EVIL_ID}],
                      {"valid": 60})  # fmt: skip
    store.close()
    passwords = tmp_path / "passwords"
    passwords.write_text(f"dora:{hash_password(PASSWORD, iterations=10_000)}\n")
    yield from _serve({"CARBONPIPE_MONGO_DB": s.mongo_db, "CARBONPIPE_MONGO_URI": s.mongo_uri,
                       "CARBONPIPE_DASHBOARD_AUTH": "password",
                       "CARBONPIPE_DASHBOARD_PASSWORDS_FILE": str(passwords),
                       "CARBONPIPE_DASHBOARD_SCOPE": "own"})  # fmt: skip


def test_login_gate_and_ids_rendered_as_text(login_dashboard: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = _browser(pw)
        anon = browser.new_page()
        anon.goto(login_dashboard)
        anon.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
        anon.wait_for_timeout(3_000)  # a refresh cycle: still nothing
        body = anon.inner_text("body")
        assert "evil.example" not in body and "dora" not in body and "kWh" not in body, body
        assert "training energy" not in body

        page = browser.new_page()  # a second session signs in; the first stays out
        page.goto(login_dashboard)
        page.get_by_role("textbox", name="user").fill("dora")
        page.get_by_role("textbox", name="password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        # in-app navigation keeps the signed-in session: the run page, the id typed in
        page.get_by_test_id("stSidebarNav").get_by_text("Run", exact=True).click()
        box = page.get_by_role("textbox", name="run id")
        box.fill(EVIL_ID)
        box.press("Enter")
        summary = page.get_by_text("(dora, vit-tiny)")
        summary.wait_for(timeout=60_000)
        assert EVIL_ID in summary.inner_text()  # shown literally, as text
        assert page.locator('a[href*="evil.example"]').count() == 0
        assert page.locator('img[src*="evil.example"]').count() == 0

        anon.reload()
        anon.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
        assert "evil.example" not in anon.inner_text("body")
        browser.close()


def test_mongodb_down_page_shows_no_password_and_no_traceback(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    uri = f"mongodb://admin:{SECRET}@127.0.0.1:{_free_port()}/?authSource=admin"
    for url in _serve({"MONGO_URI": uri, "CARBONPIPE_HOME": str(tmp_path)}):
        with sync_playwright() as pw:
            browser = _browser(pw)
            page = browser.new_page()
            page.goto(url)
            page.get_by_text("not reachable").wait_for(timeout=60_000)
            html = page.content()
            assert SECRET not in html and "admin:" not in html and "Traceback" not in html
            browser.close()
