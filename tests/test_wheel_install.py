"""The wheel is the product a pip user gets: build it, install it in a fresh venv, run it
from a folder outside the repository, and check that it carries its schemas and data.

Slow (a wheel build plus a venv whose dependencies come from PyPI, through pip's cache).
``InstalledCarbonpipe`` is the hook for more end-to-end checks of the installed command
(e.g. ``collect --output e.csv`` and the end-of-run summary): add tests that call
``installed.run(...)``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from carbonpipe.core.resources import REPO_ROOT

pytestmark = pytest.mark.slow

# What the build needs from the checkout (tests, bench and infra stay out of the wheel).
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "carbonpipe",
                "collector", "spark_jobs", "dashboard", "schemas", "data")  # fmt: skip
SLEEP_1S = ["python", "-c", "import time; time.sleep(1)"]


@dataclass
class InstalledCarbonpipe:
    """carbonpipe installed from its wheel into a fresh venv; runs outside the repository."""

    venv: Path
    cwd: Path  # a folder outside the repo
    env: dict[str, str]
    timings_s: dict[str, float]

    def run(self, *args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.venv / "bin" / "carbonpipe"), *args]
        return subprocess.run(cmd, cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout_s)  # fmt: skip

    def python(self, code: str) -> str:
        out = subprocess.run([str(self.venv / "bin" / "python"), "-c", code], cwd=self.cwd,
                             env=self.env, capture_output=True, text=True, check=True)  # fmt: skip
        return out.stdout.strip()

    def schema(self, name: str = "metric_event.v1.json") -> dict[str, object]:
        """The schema as the *installed* package resolves it (not the checkout's file)."""
        path = Path(self.python(f"from carbonpipe.core.resources import resource; "
                                f"print(resource('schemas/{name}'))"))  # fmt: skip
        assert self.venv in path.parents, f"{path} is not inside the installed package"
        loaded: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
        return loaded

    def events(self, stdout: str) -> list[dict[str, object]]:
        return [json.loads(ln) for ln in stdout.splitlines() if ln.startswith("{")]


def _pip(*args: str) -> None:
    subprocess.run([*args, "--disable-pip-version-check", "-q"], check=True, timeout=900)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InstalledCarbonpipe]:
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    for name in BUILD_INPUTS:  # build from a copy: no build/ or egg-info in the checkout
        p = REPO_ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(p, src / name)
    timings: dict[str, float] = {}
    t = time.monotonic()
    _pip(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(root / "dist"), str(src))
    timings["build_s"] = time.monotonic() - t
    (wheel,) = (root / "dist").glob("carbonpipe-*.whl")
    t = time.monotonic()
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    _pip(str(venv / "bin" / "python"), "-m", "pip", "install", str(wheel))
    timings["install_s"] = time.monotonic() - t
    outside = root / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CARBONPIPE_", "PYTHON", "VIRTUAL_ENV", "MONGO_URI"))}  # fmt: skip
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_STATE_HOME"] = str(root / "state")  # the install's default home goes here
    env["CARBONPIPE_KAFKA_BOOTSTRAP_SERVERS"] = "127.0.0.1:9"  # nothing listens: no Kafka
    print(f"wheel test timings: {timings}")
    yield InstalledCarbonpipe(venv, outside, env, timings)


def test_version_and_packaged_resources(installed: InstalledCarbonpipe) -> None:
    from carbonpipe.core.version import VERSION

    got = installed.run("--version")
    assert got.returncode == 0 and got.stdout.strip() == f"carbonpipe {VERSION}", got
    root = Path(installed.python(
        "from carbonpipe.core.resources import resource_root, in_checkout; "
        "print(resource_root()); assert not in_checkout()"))  # fmt: skip
    assert root.name == "_resources" and installed.venv in root.parents
    for rel in ("data/zone_averages.csv", "data/cpu_tdp.csv", "data/traces/us-cal-ciso-2023.csv",
                "data/traces/README.md", "schemas/grid_intensity.v1.json"):  # fmt: skip
        assert (root / rel).is_file(), rel
    zones = installed.run("zones", "--search", "japan", "--json")
    assert zones.returncode == 0 and '"JP"' in zones.stdout, zones.stderr


def _check_events(installed: InstalledCarbonpipe, got: subprocess.CompletedProcess[str]) -> None:
    assert got.returncode == 0, got.stderr
    events = installed.events(got.stdout)
    assert events, f"no events on stdout: {got.stdout!r} {got.stderr!r}"
    validator = Draft202012Validator(installed.schema())
    for ev in events:
        errors = [e.message for e in validator.iter_errors(ev)]
        assert not errors, (ev, errors)
    assert {ev["run_id"] for ev in events} == {"w1"}


def test_collect_stdout_with_a_zone(installed: InstalledCarbonpipe) -> None:
    got = installed.run("collect", "--stdout", "--zone", "JP-TK", "--run-id", "w1", "--user", "u",
                        "--model", "m", "--", *SLEEP_1S)  # fmt: skip
    _check_events(installed, got)


@pytest.mark.xfail(
    strict=True,
    reason="collect still stops without a zone: collector/cli.py should call "
    "carbonpipe.intensity.zones.default_zone (issue 14); remove this mark then",
)
def test_collect_stdout_with_no_zone_configured(installed: InstalledCarbonpipe) -> None:
    got = installed.run("collect", "--stdout", "--run-id", "w1", "--user", "u", "--model", "m",
                        "--", *SLEEP_1S)  # fmt: skip
    _check_events(installed, got)
