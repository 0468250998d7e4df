"""Trace loader: shared formats, resampling, zone inference, generic CSV/Parquet, bundling."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from carbonpipe.core.config import REPO_ROOT
from carbonpipe.intensity.trace import (
    BUNDLED_TRACES_DIR,
    TraceError,
    find_trace,
    load_trace,
    regularize,
    shared_traces_dir,
    zone_from_path,
)

UTC = timezone.utc
BUNDLED = BUNDLED_TRACES_DIR / "us-cal-ciso-2023.csv"


def test_bundled_california_trace_loads_from_a_clone_alone() -> None:
    s = load_trace(BUNDLED)
    assert s.zone == "US-CAL-CISO" and s.step_s == 3600 and len(s) == 8760
    assert s.starts.dtype == np.dtype("datetime64[s]") and s.values_g_per_kwh.dtype == np.float64
    assert s.first_start == datetime(2023, 1, 1, tzinfo=UTC)
    # data README: LCA min/median/max (mean) 93.97 / 268.18 / 429.43 (261.16)
    v = s.values_g_per_kwh
    assert (v.min(), float(np.median(v)), v.max()) == (93.97, 268.18, 429.43)
    assert round(float(v.mean()), 2) == 261.16
    assert s.value_at(datetime(2023, 1, 1, 0, 30, tzinfo=UTC)) == 285.41  # first row, LCA
    assert "LCA" in s.source


def test_direct_column_is_selectable() -> None:
    s = load_trace(BUNDLED, column="direct")
    assert round(float(s.values_g_per_kwh.mean()), 2) == 193.46  # data README, direct mean
    assert s.values_g_per_kwh[0] == 218.3


def test_bundled_copy_is_byte_identical_and_attributed(traces_dir: Path) -> None:
    assert BUNDLED.read_bytes() == (traces_dir / "us-cal-ciso-2023.csv").read_bytes()
    readme = (BUNDLED_TRACES_DIR / "README.md").read_text(encoding="utf-8")
    assert "Electricity Maps" in readme and "ODbL" in readme


def test_unlicensed_traces_are_never_in_the_repo() -> None:
    names = {p.name for p in (REPO_ROOT / "data").rglob("*.csv")}
    assert not names & {"de-2020.csv", "gb-2020.csv", "fr-2020.csv"}
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert "de-2020.csv" not in tracked.stdout and "gb-2020.csv" not in tracked.stdout


@pytest.mark.parametrize(
    ("name", "zone", "step", "cells", "mean"),
    [
        ("de-2020.csv", "DE", 900, 37_149, 315.21),  # 37,147 rows + the 2 missing 15-min rows
        ("fr-2020.csv", "FR", 1800, 18_574, 56.72),
        ("us-cal-ciso-2021.csv", "US-CAL-CISO", 3600, 8760, 274.33),
        ("us-cal-ciso-2022.csv", "US-CAL-CISO", 3600, 8760, 261.28),
    ],
)
def test_shared_traces(
    traces_dir: Path, name: str, zone: str, step: int, cells: int, mean: float
) -> None:
    s = load_trace(traces_dir / name)
    assert (s.zone, s.step_s, len(s)) == (zone, step, cells)
    assert np.all(np.diff(s.starts.astype(np.int64)) == step)
    assert abs(float(s.values_g_per_kwh.mean()) - mean) < 0.05
    assert s.first_start == datetime(
        2019 if zone != "US-CAL-CISO" else int(name[12:16]),
        *((12, 20) if zone != "US-CAL-CISO" else (1, 1)),
        tzinfo=UTC,
    )


def test_de_missing_rows_hold_the_previous_value(traces_dir: Path) -> None:
    s = load_trace(traces_dir / "de-2020.csv")
    before = s.value_at(datetime(2020, 12, 19, 23, 0, tzinfo=UTC))
    assert s.value_at(datetime(2020, 12, 19, 23, 15, tzinfo=UTC)) == before


def test_gb_mixed_resolution_is_resampled_to_30_min_by_time_weighted_mean(traces_dir: Path) -> None:
    raw = {}
    for line in (traces_dir / "gb-2020.csv").read_text().splitlines()[1:]:
        t, v = line.split(",")
        raw[t] = float(v)
    s = load_trace(traces_dir / "gb-2020.csv")
    assert s.step_s == 1800 and np.all(np.diff(s.starts.astype(np.int64)) == 1800)
    # 30-min era: the cell is the row
    assert s.value_at(datetime(2020, 6, 1, 12, 0, tzinfo=UTC)) == raw["2020-06-01 12:00:00"]
    # 15-min era: the cell is the mean of its two quarter-hours
    want = (raw["2020-11-15 12:00:00"] + raw["2020-11-15 12:15:00"]) / 2
    assert s.value_at(datetime(2020, 11, 15, 12, 0, tzinfo=UTC)) == pytest.approx(want)


def test_regularize_time_weights_mixed_steps() -> None:
    t = np.array(
        [
            "2020-01-01T00:00",
            "2020-01-01T00:30",
            "2020-01-01T01:00",
            "2020-01-01T01:15",
            "2020-01-01T01:30",
            "2020-01-01T02:00",
        ],
        dtype="datetime64[s]",
    )
    v = np.array([10.0, 20.0, 30.0, 50.0, 60.0, 70.0])
    starts, vals, step = regularize(t, v)
    assert step == 1800
    assert list(vals) == [10.0, 20.0, 40.0, 60.0, 70.0]
    assert str(starts[2]) == "2020-01-01T01:00:00"


def test_zone_from_file_name() -> None:
    assert zone_from_path(Path("de-2020.csv")) == "DE"
    assert zone_from_path(Path("gb-2020.csv")) == "GB"
    assert zone_from_path(Path("fr-2020.csv")) == "FR"
    assert zone_from_path(Path("us-cal-ciso-2023.csv")) == "US-CAL-CISO"
    assert zone_from_path(Path("nl_2024_hourly.parquet")) == "NL"


def test_generic_csv_with_aware_timestamps_and_explicit_zone(tmp_path: Path) -> None:
    f = tmp_path / "whatever.csv"
    f.write_text(
        "timestamp,carbon_intensity_g_per_kwh\n"
        "2024-03-01T01:00:00+01:00,100\n2024-03-01T00:30:00Z,200\n"
        "2024-03-01T01:00:00Z,300\n"
    )
    s = load_trace(f, zone="NL")
    assert s.zone == "NL" and s.step_s == 1800
    assert [str(x) for x in s.starts] == [
        "2024-03-01T00:00:00",
        "2024-03-01T00:30:00",
        "2024-03-01T01:00:00",
    ]
    assert list(s.values_g_per_kwh) == [100.0, 200.0, 300.0]


def test_generic_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    starts = [datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(4)]
    table = pa.table(
        {
            "start": pa.array(starts, pa.timestamp("s", tz="UTC")),
            "carbon_intensity_g_per_kwh": [1.0, 2.0, 3.0, 4.0],
            "zone": ["SE-SE3"] * 4,
        }
    )
    f = tmp_path / "trace.parquet"
    pq.write_table(table, f)
    s = load_trace(f)
    assert s.zone == "SE-SE3" and s.step_s == 3600 and list(s.values_g_per_kwh) == [1, 2, 3, 4]
    assert s.first_start == starts[0]


def test_bad_files_give_trace_errors(tmp_path: Path) -> None:
    f = tmp_path / "x-2020.csv"
    f.write_text("when,value\n2020-01-01,1\n")
    with pytest.raises(TraceError, match="no time column"):
        load_trace(f)
    with pytest.raises(TraceError, match="no such trace"):
        load_trace(tmp_path / "missing.csv")
    with pytest.raises(TraceError, match="column"):
        load_trace(BUNDLED, column="nope")


def test_replay_time_maps_hour_of_year_and_wraps() -> None:
    s = load_trace(BUNDLED)
    assert s.replay_time(datetime(2026, 7, 4, 15, 30, tzinfo=UTC)) == datetime(
        2023, 7, 4, 15, 30, tzinfo=UTC
    )
    # hour 8783 of a leap year does not exist in a 8760-hour trace: wraps to its start
    assert s.replay_time(datetime(2028, 12, 31, 23, 0, tzinfo=UTC)) == datetime(
        2023, 1, 1, 23, 0, tzinfo=UTC
    )


def test_shared_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONPIPE_SHARED_DIR", str(tmp_path))
    assert shared_traces_dir() is None
    (tmp_path / "data" / "carbon-intensity").mkdir(parents=True)
    (tmp_path / "data" / "carbon-intensity" / "xx-2020.csv").write_text("Time,Carbon Intensity\n")
    assert shared_traces_dir() == tmp_path / "data" / "carbon-intensity"


def test_find_trace_prefers_the_bundled_file() -> None:
    assert find_trace("us-cal-ciso") == BUNDLED
    assert find_trace("ATLANTIS") is None


def test_loads_are_cached_and_read_only(tmp_path: Path) -> None:
    assert load_trace(BUNDLED) is load_trace(str(BUNDLED))
    s = load_trace(BUNDLED)
    with pytest.raises(ValueError):
        s.values_g_per_kwh[0] = 0.0
    f = tmp_path / "nl-2024.csv"
    f.write_text("start,carbon_intensity_g_per_kwh\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n")
    first = load_trace(f)
    f.write_text(
        "start,carbon_intensity_g_per_kwh\n"
        "2024-01-01 00:00,5\n2024-01-01 01:00,6\n2024-01-01 02:00,7\n"
    )
    assert load_trace(f) is not first and load_trace(f).values_g_per_kwh[0] == 5.0
