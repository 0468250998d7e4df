"""The command line of the services and apps: registration, one-line errors, ``clean``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from carbonpipe import cli
from carbonpipe.core.config import get_settings, load_settings
from carbonpipe.services import cli as services_cli


def test_cli_registers_up_down_status_clean() -> None:
    parser = argparse.ArgumentParser()
    services_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["up", "--services", "kafka"])
    assert args.services == ["kafka"] and args.func is services_cli._cmd_up
    assert parser.parse_args(["down"]).services == ["kafka", "mongo"]
    assert parser.parse_args(["clean", "--all"]).all
    with pytest.raises(SystemExit):
        parser.parse_args(["up", "--services", "zookeeper"])


def test_unknown_app_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["apps", "up", "--apps", "foo"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown app(s) ['foo']; pick from feeder, stream, alerts, dashboard" in err
    assert "Traceback" not in err


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    lay = load_settings(home=home).layout
    for folder in (*lay.data_dirs, lay.jars / "kafka", lay.bin):
        folder.mkdir(parents=True)
        (folder / "f").write_text("x")
    return home


def test_clean_drops_the_data_dirs_and_keeps_the_builds(tmp_path: Path) -> None:
    s = load_settings(home=_home(tmp_path))
    removed = services_cli.clean(s)
    assert sorted(removed) == sorted(d.resolve() for d in s.layout.data_dirs)
    assert sorted(p.name for p in s.home.iterdir()) == ["bin", "jars"]


def test_clean_all_removes_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = _home(tmp_path)
    monkeypatch.setenv("CARBONPIPE_HOME", str(home))
    get_settings.cache_clear()
    try:
        assert cli.main(["clean", "--all"]) == 0
    finally:
        get_settings.cache_clear()
    assert not home.exists()
    assert f"removed {home.resolve()}" in capsys.readouterr().out
