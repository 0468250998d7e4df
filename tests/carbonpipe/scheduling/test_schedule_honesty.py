"""``carbonpipe schedule`` says what it planned on and refuses a replayed past as a forecast."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonpipe.cli import main
from carbonpipe.core.config import get_settings
from carbonpipe.scheduling.forecast import describe_provenance

ARGS = ["schedule", "--zone", "US-CAL-CISO", "--duration", "1h", "--deadline", "6h", "--dry-run"]


@pytest.fixture
def chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings with a given provider chain (the bundled US-CAL-CISO 2023 trace is the data)."""

    def use(providers: str) -> None:
        monkeypatch.setenv("CARBONPIPE_HOME", str(tmp_path))
        monkeypatch.setenv("CARBONPIPE_PROVIDERS", providers)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def test_a_replayed_trace_from_the_chain_is_refused_unless_asked(chain, capsys) -> None:
    chain("trace,static")
    assert main(ARGS) == 2
    err = capsys.readouterr().err
    assert "replayed onto today" in err and "us-cal-ciso-2023.csv" in err
    assert "--allow-replay" in err and "CARBONPIPE_PROVIDERS" in err

    assert main([*ARGS, "--allow-replay"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("forecast US-CAL-CISO"))
    assert "trace" in line and "REPLAYED from 2023" in line and "perfect foresight" in line


def test_the_source_planned_on_is_printed_for_an_annual_average(chain, capsys) -> None:
    chain("static")
    assert main(ARGS) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "forecast US-CAL-CISO" in ln)
    assert "static fallback average" in line and "annual average" in line


def test_describe_provenance_of_a_live_forecast_has_no_flags() -> None:
    prov = {"provider": "uk", "kind": "forecast", "signal": "average", "source": "NG ESO fw48h",
            "replayed": False, "perfect_foresight": False}  # fmt: skip
    assert describe_provenance(prov) == "uk forecast average - NG ESO fw48h"
