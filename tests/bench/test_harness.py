"""bench/harness.py: the parts every benchmark relies on to never publish a misleading figure.

No timing is asserted here (that belongs to the benchmarks); these check the bookkeeping:
interleaving order, median and range, and that a NaN or missing comparison is refused without
touching an existing results file.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from bench import harness
from bench.harness import BenchError, Run


def _run(tmp_path: Path, rounds: int = 3) -> Run:
    return Run("demo", argparse.Namespace(rounds=rounds, results_dir=tmp_path), ["--x", "1"])


def test_interleave_runs_sides_in_turn_each_round() -> None:
    calls: list[tuple[str, int]] = []

    def side(name: str) -> harness.Measure:
        def measure(r: int) -> dict[str, float]:
            calls.append((name, r))
            return {"v": float(r)}

        return measure

    out = harness.interleave(3, [("a", side("a")), ("b", side("b"))])
    assert calls == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert out == {
        "a": [{"v": 0.0}, {"v": 1.0}, {"v": 2.0}],
        "b": [{"v": 0.0}, {"v": 1.0}, {"v": 2.0}],
    }


def test_warmup_runs_each_side_once_unrecorded_first() -> None:
    calls: list[tuple[str, int]] = []

    def side(name: str) -> harness.Measure:
        def measure(r: int) -> dict[str, float]:
            calls.append((name, r))
            return {"v": float(r)}

        return measure

    out = harness.interleave(1, [("a", side("a")), ("b", side("b"))], warmup=True)
    assert calls == [("a", -1), ("b", -1), ("a", 0), ("b", 0)]
    assert out == {"a": [{"v": 0.0}], "b": [{"v": 0.0}]}


def test_spread_gives_median_and_range_and_refuses_nan() -> None:
    s = harness.spread([3.0, 1.0, 10.0], "x")
    assert (s["median"], s["min"], s["max"], s["rounds"]) == (3.0, 1.0, 10.0, [3.0, 1.0, 10.0])
    with pytest.raises(BenchError, match="not a finite number"):
        harness.spread([1.0, math.nan, 2.0], "x")
    with pytest.raises(BenchError, match="not measured"):
        harness.spread([], "x")


def test_ratio_is_taken_per_round_before_the_median() -> None:
    # per-round ratios 0.5, 0.25, 2.0 -> median 0.5; the ratio of the medians would be 2/2 = 1
    s = harness.ratio_spread([1.0, 2.0, 4.0], [2.0, 8.0, 2.0], "r")
    assert s["rounds"] == [0.5, 0.25, 2.0]
    assert s["median"] == 0.5
    with pytest.raises(BenchError, match="denominator is 0"):
        harness.ratio_spread([1.0], [0.0], "r")
    with pytest.raises(BenchError, match="measured in 2 and 1 rounds"):
        harness.ratio_spread([1.0, 2.0], [1.0], "r")


def test_result_records_machine_versions_command_and_summaries(tmp_path: Path) -> None:
    run = _run(tmp_path, rounds=2)
    doc = run.result(
        order=["a", "b"],
        config={"k": 1},
        figures={"a.x_s": [1.0, 3.0]},
        ratios={"a_vs_b.ratio": ([1.0, 3.0], [2.0, 2.0])},
    )
    assert doc["figures"]["a.x_s"]["median"] == 2.0
    assert doc["ratios"]["a_vs_b.ratio"]["rounds"] == [0.5, 1.5]
    assert set(doc["machine"]) >= {"cores", "memory_gib", "cpu_model", "load_avg_before",
                                   "load_avg_after"}  # fmt: skip
    assert set(doc["versions"]) == {"python", "spark", "kafka", "codecarbon"}
    assert doc["command"].endswith("--x 1")
    assert doc["rounds"] == 2 and doc["order"].endswith("a, b")


def test_result_refuses_missing_rounds_and_missing_comparisons(tmp_path: Path) -> None:
    run = _run(tmp_path, rounds=3)
    with pytest.raises(BenchError, match="measured in 2 of 3 rounds"):
        run.result(order=[], config={}, figures={"a": [1.0, 2.0]}, ratios={
            "r": ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])})  # fmt: skip
    with pytest.raises(BenchError, match="no comparison"):
        run.result(order=[], config={}, figures={"a": [1.0, 2.0, 3.0]}, ratios={})


def test_write_is_atomic_and_refuses_nan_keeping_the_old_file(tmp_path: Path) -> None:
    run = _run(tmp_path)
    old = '{"old": true}\n'
    (tmp_path / "demo.json").write_text(old)
    with pytest.raises(BenchError, match="NaN"):
        run.write({"details": {"x": math.nan}})
    assert (tmp_path / "demo.json").read_text() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.json"]
    run.write({"ok": 1.5})
    assert json.loads((tmp_path / "demo.json").read_text()) == {"ok": 1.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.json"]


def test_require_peer_reports_what_to_install() -> None:
    assert harness.require_peer("json")  # the stdlib always imports
    with pytest.raises(BenchError, match=r"no_such_peer_xyz cannot be imported.*make bench-deps"):
        harness.require_peer("no_such_peer_xyz")
