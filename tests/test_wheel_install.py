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
# A child that uses the CPU for 2 s: the TDP model (no RAPL here) gives it a positive energy.
BUSY_2S = ["python", "-c", "import time\nt = time.time()\nwhile time.time() - t < 2: pass"]


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


def _check_events(installed: InstalledCarbonpipe, path: Path, run_id: str | None) -> None:
    events = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln]
    assert events, f"no events in {path}"
    validator = Draft202012Validator(installed.schema())
    for ev in events:
        errors = [e.message for e in validator.iter_errors(ev)]
        assert not errors, (ev, errors)
    assert len({ev["run_id"] for ev in events}) == 1
    if run_id:
        assert events[0]["run_id"] == run_id


def _check_csv(path: Path) -> None:
    """CodeCarbon's emissions.csv layout, read the way CodeCarbon's users read it."""
    import pandas as pd

    from collector.output import CODECARBON_COLUMNS

    df = pd.read_csv(path)
    assert tuple(df.columns) == CODECARBON_COLUMNS and len(df) == 1
    assert df["energy_consumed"].iloc[0] > 0 and df["emissions"].iloc[0] > 0


def test_collect_with_a_zone(installed: InstalledCarbonpipe) -> None:
    ev, csv = installed.cwd / "zone.jsonl", installed.cwd / "zone.csv"
    got = installed.run("collect", "--zone", "JP-TK", "--run-id", "w1", "--user", "u",
                        "--model", "m", "--events", str(ev), "--output", str(csv), "--",
                        *BUSY_2S)  # fmt: skip
    assert got.returncode == 0, got.stderr
    _check_events(installed, ev, "w1")
    _check_csv(csv)


def test_collect_with_no_flags_no_zone_and_no_kafka(installed: InstalledCarbonpipe) -> None:
    """The first run of a pip user: no zone, no Kafka, only --output; done within seconds of
    the child, with a summary and a CodeCarbon-layout CSV."""
    ev, csv = installed.cwd / "nozone.jsonl", installed.cwd / "emissions.csv"
    t = time.monotonic()
    got = installed.run("collect", "--events", str(ev), "--output", str(csv), "--", *BUSY_2S)
    took_s = time.monotonic() - t
    assert got.returncode == 0, got.stderr
    assert took_s < 2 + 15, f"collect took {took_s:.1f} s for a 2 s child"  # not 60 s
    assert "Kafka" in got.stderr and "WORLD" in got.stderr  # says what it did and charged
    assert "kWh" in got.stderr and "gCO2e" in got.stderr  # the end-of-run summary
    _check_events(installed, ev, None)
    _check_csv(csv)
