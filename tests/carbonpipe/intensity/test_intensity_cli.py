"""`carbonpipe intensity` and `carbonpipe feed --dry-run` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbonpipe.cli import main
from carbonpipe.core.config import REPO_ROOT, get_settings

from .conftest import FixtureServer, fixture_json, fixture_reply


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    for k in list(os.environ):
        if k.startswith("CARBONPIPE_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("CARBONPIPE_HOME", str(tmp_path))
    monkeypatch.setenv("CARBONPIPE_HTTP_RETRIES", "0")
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_intensity_gb_json_against_the_uk_fixture(
    server: FixtureServer, fixtures_dir: Path, tmp_path: Path
) -> None:
    f = fixtures_dir / "uk-national-grid" / "intensity-current.docs.json"
    server.route(r"/intensity", fixture_reply(f))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONPIPE_")}
    env.update(
        CARBONPIPE_UK_BASE_URL=server.url,
        CARBONPIPE_PROVIDERS="uk,static",
        CARBONPIPE_HOME=str(tmp_path),
    )
    r = subprocess.run(
        [sys.executable, "-m", "carbonpipe.cli", "intensity", "GB", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    row = fixture_json(f)["data"][0]
    assert out == {
        "zone": "GB",
        "start": "2018-01-20T12:00:00.000Z",
        "end": "2018-01-20T12:30:00.000Z",
        "carbon_intensity_g_per_kwh": float(row["intensity"]["actual"]),
        "provider": "uk",
        "kind": "actual",
        "signal": "average",
        "source": out["source"],
    }
    assert out["carbon_intensity_g_per_kwh"] == 263.0 and "NESO" in out["source"]


def test_intensity_provider_flag_and_forecast(
    env: pytest.MonkeyPatch,
    server: FixtureServer,
    fixtures_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.route(
        r"/intensity",
        fixture_reply(fixtures_dir / "uk-national-grid" / "intensity-current.docs.json"),
    )
    env.setenv("CARBONPIPE_UK_BASE_URL", server.url)
    assert main(["intensity", "GB", "--provider", "uk"]) == 0
    assert "263.0 gCO2eq/kWh  [uk, actual, average]" in capsys.readouterr().out
    # the fw48h route is absent (404 from the test server): forecast falls through to static
    assert main(["intensity", "GB", "--provider", "uk,static", "--json", "--forecast", "2h"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["current"]["provider"] == "uk" and out["forecast"][0]["provider"] == "static"
    assert out["forecast"][0]["kind"] == "fallback"


def test_intensity_offline_default_chain_and_errors(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["intensity", "US-CAL-CISO", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["provider"] == "trace" and out["replayed"] is True
    assert main(["intensity", "NOT-A-ZONE"]) == 2
    assert "unknown zone" in capsys.readouterr().err
    env.setenv("CARBONPIPE_ALLOW_FALLBACK_ZONE", "WORLD")
    get_settings.cache_clear()
    assert main(["intensity", "NOT-A-ZONE", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["zone"] == "WORLD"
    env.setenv("CARBONPIPE_PROVIDERS", "electricitymaps")
    get_settings.cache_clear()
    assert main(["intensity", "DE"]) == 1
    assert "Invalid" not in capsys.readouterr().err  # typed, short message; no traceback


def test_feed_trace_replay_dry_run_from_a_clone_alone(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["feed", "--once", "--trace-replay", "--dry-run"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["value"]["kind"] == "fallback"
    assert {x["value"]["zone"] for x in lines} == {"US-CAL-CISO"}
    assert len(lines) == 1 + 73  # fallback + (48 h + current hour + 24 h) hourly cells
