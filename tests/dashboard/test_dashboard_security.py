"""What the dashboard shows to whom: escaped ids, decision logs from their folder only, no
secrets or tracebacks, and with login on nothing before sign-in (Streamlit's AppTest runs the
real page script; MongoDB "down" is a closed port on loopback, no mock)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import ConfigError, get_settings, load_settings
from dashboard.auth import (
    check_login,
    hash_password,
    load_passwords,
    runs_filter,
    verify_password,
    visible_runs,
)
from dashboard.cli import command
from dashboard.data import decision_log, run_summary, scheduled_summary
from dashboard.safe import md

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
SECRET = "S3cr3tPw"
EVIL = "[click](https://evil.example) ![px](https://evil.example/p.png) :red[x] <b>b</b> $x$"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


# ------------------------------------------------------------------ Markdown escaping
def test_ids_are_escaped_so_no_link_image_or_directive_renders() -> None:
    text = run_summary({"run_id": EVIL, "user_id": "u\n# heading", "model_name": "m*x*",
                        "mean_intensity_g_per_kwh": 1.0, "method": "measured"})  # fmt: skip
    assert md(EVIL) == f"`{EVIL}`" and md(EVIL) in text  # a code span: nothing is markup
    assert md("u\n# heading") == "`u # heading`" and md("m*x*") in text
    assert md("a`b") == "``a`b``" and md("`x") == "`` `x ``" and md("") == ""
    assert "\n" not in text


def test_text_tables_escape_headers_and_cells() -> None:
    """``st.table`` renders Markdown: the compare view's run ids are its column names."""
    from dashboard.run_data import compare_table
    from dashboard.safe import text_table

    rows = text_table(compare_table([{"run_id": EVIL, "user_id": EVIL, "energy_kwh": 1.0}]))
    assert all(md(EVIL) in r and EVIL not in r for r in rows)  # the header: escaped
    assert rows[0][md(EVIL)] == md(EVIL)  # the user cell: a code span too
    assert text_table([{"n": 1.5}]) == [{"`n`": 1.5}]  # numbers stay numbers


def test_scheduled_summary_escapes_policy_and_zone() -> None:
    plan = {"policy": EVIL, "zone": "![z](https://e/x.png)", "expected_g_per_kwh": 100.0,
            "now_g_per_kwh": 200.0, "reduction_pct": 50.0}  # fmt: skip
    text = scheduled_summary({"plan": plan}, 1.0)
    assert md(EVIL) in text and md("![z](https://e/x.png)") in text


# ------------------------------------------------------------------ decision logs
@pytest.fixture()
def home(tmp_path: Path) -> Path:
    (tmp_path / "home" / "schedules").mkdir(parents=True)
    (tmp_path / "home" / "schedules" / "20250101T000000Z-1a2b3c4d.json").write_text(
        json.dumps({"decision_id": "20250101T000000Z-1a2b3c4d"}))
    (tmp_path / "home" / "secret.json").write_text(json.dumps({"token": "x"}))
    (tmp_path / "outside.json").write_text(json.dumps({"token": "y"}))
    return tmp_path / "home"


def test_decision_log_by_id_inside_its_folder(home: Path) -> None:
    s = load_settings(home=home)
    assert decision_log(s, "20250101T000000Z-1a2b3c4d") == {
        "decision_id": "20250101T000000Z-1a2b3c4d"}


@pytest.mark.parametrize("bad", ["../secret", "../../outside", "/etc/passwd", "..", "a/../../x",
                                 "sub/x", "", None, 42, "x\x00y"])  # fmt: skip
def test_decision_log_refuses_paths_out_of_its_folder(home: Path, bad: object) -> None:
    s = load_settings(home=home)
    assert decision_log(s, bad) is None
    assert decision_log(s, str(home.parent / "outside")) is None  # absolute, existing file


def test_decision_log_refuses_a_symlink_that_leads_out(home: Path) -> None:
    (home / "schedules" / "evil.json").symlink_to(home.parent / "outside.json")
    assert decision_log(load_settings(home=home), "evil") is None


def test_a_non_json_decision_log_is_no_log_not_a_traceback(home: Path) -> None:
    (home / "schedules" / "broken.json").write_text("not json {")
    (home / "schedules" / "list.json").write_text("[1, 2]")
    s = load_settings(home=home)
    assert decision_log(s, "broken") is None and decision_log(s, "list") is None


# ------------------------------------------------------------------ login and scope
def test_passwords_are_hashed_and_checked() -> None:
    stored = hash_password("correct horse", iterations=1_000)
    assert stored.startswith("pbkdf2_sha256$1000$") and "correct horse" not in stored
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong") and not verify_password("garbage", "x")
    users = {"alice": stored}
    assert check_login(users, "alice", "correct horse")
    assert not check_login(users, "alice", "nope") and not check_login(users, "bob", "x")


def test_a_plain_text_password_file_is_refused_naming_the_key(tmp_path: Path) -> None:
    f = tmp_path / "passwords"
    f.write_text("# team\nalice:" + hash_password("pw", iterations=1_000) + "\n")
    assert set(load_passwords(f)) == {"alice"}
    f.write_text("bob:hunter2\n")
    with pytest.raises(ConfigError, match=r"CARBONPIPE_DASHBOARD_PASSWORDS_FILE.*line 1") as err:
        load_passwords(f)
    assert "hunter2" not in str(err.value)


def test_settings_require_what_a_login_needs() -> None:
    with pytest.raises(ConfigError, match="CARBONPIPE_DASHBOARD_PASSWORDS_FILE"):
        load_settings(dashboard_auth="password")
    with pytest.raises(ConfigError, match="CARBONPIPE_DASHBOARD_SCOPE=own needs"):
        load_settings(dashboard_scope="own")


def test_a_viewer_sees_only_their_runs_in_own_scope() -> None:
    runs = [{"run_id": "a1", "user_id": "alice"}, {"run_id": "b1", "user_id": "bob"}]
    assert [r["run_id"] for r in visible_runs("alice", runs, "own")] == ["a1"]
    assert visible_runs(None, runs, "own") == []  # no identity never widens the view
    assert visible_runs(None, runs, "all") == runs
    assert runs_filter("alice", "own") == {"user_id": "alice"}
    assert runs_filter(None, "own") == {"user_id": {"$in": []}} and runs_filter("a", "all") == {}


# ------------------------------------------------------------------ launch flags
def test_the_dashboard_binds_loopback_and_hides_error_details_by_default() -> None:
    cmd = command(8501)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--client.showErrorDetails") + 1] == "none"
    assert command(8501, "0.0.0.0")[cmd.index("--server.address") + 1] == "0.0.0.0"


# ------------------------------------------------------------------ the page itself
@pytest.fixture()
def page_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """The page's settings come from the environment (get_settings is cached: cleared)."""
    for key in list(os.environ):
        if key.startswith("CARBONPIPE_DASHBOARD") or key in ("MONGO_URI", "CARBONPIPE_MONGO_URI"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CARBONPIPE_HOME", str(tmp_path))
    monkeypatch.setenv("MONGO_URI", f"mongodb://admin:{SECRET}@127.0.0.1:{_closed_port()}/")
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def _everything(at: Any) -> str:
    """All the script sent to the browser: every element's message (bodies, labels, values)."""
    out: list[str] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in (getattr(node, "children", None) or {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def test_mongodb_down_shows_no_uri_no_password_no_traceback(page_env: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    (err,) = at.error
    assert "not reachable" in err.value and "incident" in err.value
    text = _everything(at)
    assert "not reachable" in text  # the walk does see the page's text
    assert SECRET not in text and "admin" not in text and "Traceback" not in text


def test_with_login_on_a_session_without_credentials_sees_nothing(
    page_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from streamlit.testing.v1 import AppTest

    f = tmp_path / "passwords"
    f.write_text("alice:" + hash_password("pw-alice", iterations=1_000) + "\n")
    page_env.setenv("CARBONPIPE_DASHBOARD_AUTH", "password")
    page_env.setenv("CARBONPIPE_DASHBOARD_PASSWORDS_FILE", str(f))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert not at.title and not at.dataframe and not at.metric and not at.markdown
    assert not at.error  # not even the hot store's state
    assert [t.label for t in at.text_input] == ["user", "password"]

    at.text_input[0].input("alice")
    at.text_input[1].input("wrong")
    at.button[0].click().run()
    assert not at.title and "wrong password" in at.error[0].value

    at.text_input[0].input("alice")
    at.text_input[1].input("pw-alice")
    at.button[0].click().run()
    assert at.title and "signed in as alice" in _everything(at)
    assert "pw-alice" not in _everything(at)
