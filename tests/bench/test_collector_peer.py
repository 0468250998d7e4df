"""bench_collector.py end to end with tiny durations: a missing or failing CodeCarbon makes the
run fail loudly (exit 2, a message saying what to do) and leaves the results directory as it
was. The peer is made to fail for real: a package named ``codecarbon`` placed first on the
child processes' path either cannot be imported or raises when its tracker starts; nothing
in the benchmark is mocked. No timing is asserted.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_collector.py"
TINY = ["--rounds", "1", "--window-s", "0.3", "--warmup-s", "0.1", "--interval-s", "0.1",
        "--tools", "carbonpipe,codecarbon", "--workloads", "idle"]  # fmt: skip
SENTINEL = '{"committed": "result"}\n'


def _shadow(tmp_path: Path, init: str) -> Path:
    pkg = tmp_path / "shadow" / "codecarbon"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(init)
    return pkg.parent


def _bench(
    tmp_path: Path, shadow: Path | None, *extra: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    results = tmp_path / "results"
    results.mkdir()
    (results / "collector.json").write_text(SENTINEL)
    path = [str(shadow)] if shadow else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *TINY, "--results-dir", str(results), *extra],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return proc, results


def _untouched(results: Path) -> None:
    assert sorted(p.name for p in results.iterdir()) == ["collector.json"]
    assert (results / "collector.json").read_text() == SENTINEL


def test_codecarbon_not_importable_fails_before_measuring_and_writes_nothing(
    tmp_path: Path,
) -> None:
    shadow = _shadow(tmp_path, "raise ImportError('codecarbon hidden by the test')\n")
    proc, results = _bench(tmp_path, shadow)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "codecarbon cannot be imported" in proc.stderr
    assert "make bench-deps" in proc.stderr
    assert "nothing was written" in proc.stderr
    assert "round 1/1" not in proc.stdout  # failed before any measurement
    _untouched(results)


def test_codecarbon_failing_at_start_fails_the_run_and_writes_nothing(tmp_path: Path) -> None:
    shadow = _shadow(
        tmp_path,
        "__version__ = '0-broken'\n"
        "class OfflineEmissionsTracker:\n"
        "    def __init__(self, **kw):\n"
        "        raise RuntimeError('tracker broken by the test')\n",
    )
    proc, results = _bench(tmp_path, shadow)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "codecarbon (idle) could not be measured" in proc.stderr
    assert "tracker broken by the test" in proc.stderr
    assert re.search(r"\bnan\b", proc.stdout + proc.stderr, re.I) is None
    _untouched(results)


def test_bad_tool_list_is_refused(tmp_path: Path) -> None:
    proc, results = _bench(tmp_path, None, "--tools", "carbonpipe")
    assert proc.returncode == 2
    assert "must include carbonpipe and codecarbon" in proc.stderr
    _untouched(results)


def test_with_codecarbon_the_result_is_complete_and_finite(tmp_path: Path) -> None:
    pytest.importorskip("codecarbon", reason="the bench extra is not installed (make bench-deps)")
    proc, results = _bench(tmp_path, None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((results / "collector.json").read_text())
    ratio = doc["ratios"]["carbonpipe_vs_codecarbon.idle.cpu_ratio"]
    assert math.isfinite(ratio["median"]) and len(ratio["rounds"]) == 1
    assert doc["versions"]["codecarbon"] not in ("", "not installed")
    assert "--results-dir" in doc["command"]
