"""bench_pipeline's results document and its README rendering, from rounds given here (the
1 M-event measurement itself is a benchmark, not a test): per-round ratios to the bare rate,
a side missing from a round refused, and the README row showing median [range] of the rounds.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from bench import bench_pipeline as bp
from bench import readme_table as rt
from bench.harness import BenchError, Run

ROOT = Path(__file__).resolve().parents[2]
N = 1000


def _rounds(rates: dict[str, list[float]]) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {}
    for side, rs in rates.items():
        out[side] = [
            {"events_per_s": r, "events_per_s_wall": r * 0.9, "busy_s": N / r,
             "wall_s": N / r, "window_docs": 17.0, "events": N}
            for r in rs
        ]  # fmt: skip
    return out


RATES = {
    "job": [300.0, 100.0, 200.0],
    "job_with_event_archive": [150.0, 50.0, 100.0],
    "bare_files": [600.0, 400.0, 1000.0],
    "bare_kafka": [450.0, 300.0, 500.0],
    "kafka_only": [3000.0, 2000.0, 2500.0],
}


def _doc(tmp_path: Path, rates: dict[str, list[float]]) -> dict:
    run = Run("pipeline", argparse.Namespace(rounds=3, results_dir=tmp_path), [])
    return bp.result_doc(run, _rounds(rates), n=N, runs=10, batch=N, preload_s=1.0,
                         batch_timings={})  # fmt: skip


def test_ratios_are_per_round_and_summarised(tmp_path: Path) -> None:
    doc = _doc(tmp_path, RATES)
    job = doc["ratios"]["job_vs_bare_files.rate_ratio"]
    assert job["rounds"] == [0.5, 0.25, 0.2]
    assert (job["median"], job["min"], job["max"]) == (0.25, 0.2, 0.5)
    assert doc["figures"]["bare_files.s"]["median"] == N / 600.0
    assert doc["order"].endswith(", ".join(bp.SIDES))


def test_a_side_missing_or_short_is_refused(tmp_path: Path) -> None:
    missing = {k: v for k, v in RATES.items() if k != "bare_files"}
    with pytest.raises(BenchError, match="bare_files was not measured"):
        _doc(tmp_path, missing)
    short = {**RATES, "kafka_only": [3000.0, 2000.0]}
    with pytest.raises(BenchError, match="measured in 2 of 3 rounds"):
        _doc(tmp_path, short)


def test_readme_shows_median_and_range_of_a_harness_result(tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(ROOT / "bench" / "results", results)
    run = Run("pipeline", argparse.Namespace(rounds=3, results_dir=results), [])
    run.write(_doc(tmp_path, RATES))
    blocks = rt.render(results)
    assert "0.25 [0.20–0.50] of Spark's bare rate" in blocks["bench-table"]
    assert "median [range] of 3 rounds (`pipeline.json`)" in blocks["bench-table"]
    assert "| 600 [400–1,000] | 1.7 [1.0–2.5] |" in blocks["bench-pipeline-table"]
