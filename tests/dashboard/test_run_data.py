"""The run page's and compare view's figures from a run's windows."""

from __future__ import annotations

import pytest

from dashboard import run_data as rd


def w(start: int, host: str, kwh: tuple[float, float, float], power_w: float, g: float,
      epochs: tuple[int, int] | None = None, step: int | None = None) -> dict[str, object]:
    cpu, gpu, ram = kwh
    return {"window_start": start, "host": host, "energy_kwh": cpu + gpu + ram, "cpu_kwh": cpu,
            "gpu_kwh": gpu, "ram_kwh": ram, "mean_power_w": power_w, "co2_g": g,
            "first_epoch": epochs[0] if epochs else None,
            "last_epoch": epochs[1] if epochs else None, "last_step": step}  # fmt: skip


WINDOWS = [
    w(0, "h1", (0.5, 0.5, 0.0), 100.0, 10.0, (0, 0), 9),
    w(0, "h2", (0.25, 0.0, 0.25), 40.0, 2.0, (0, 0), 4),
    w(60, "h1", (1.0, 0.0, 0.0), 60.0, 30.0, (0, 1), 15),
    w(120, "h1", (0.1, 0.0, 0.0), 6.0, 1.0),  # no epoch reported
]


def test_power_is_split_by_each_device_share_and_summed_over_hosts() -> None:
    rows = rd.device_power(WINDOWS)
    assert rows[0] == {"window_start": 0, "CPU (W)": 70.0, "GPU (W)": 50.0, "RAM (W)": 20.0}
    assert rows[1]["CPU (W)"] == 60.0 and rows[1]["GPU (W)"] == 0.0
    assert rd.mean_power(rows)["CPU (W)"] == pytest.approx((70 + 60 + 6) / 3)


def test_intensity_is_energy_weighted_and_co2_cumulative() -> None:
    rows = rd.intensity_and_cumulative(WINDOWS)
    assert rows[0]["intensity (g/kWh)"] == pytest.approx(12.0 / 1.5)
    assert [r["cumulative gCO₂e"] for r in rows] == [12.0, 42.0, 43.0]


def test_a_window_over_an_epoch_boundary_is_split_evenly() -> None:
    ep = rd.per_epoch(WINDOWS)
    assert [e["epoch"] for e in ep] == [0, 1]
    assert ep[0]["energy_kwh"] == pytest.approx(1.5 + 0.5) and ep[0]["co2_g"] == 12.0 + 15.0
    assert ep[1]["energy_kwh"] == pytest.approx(0.5) and ep[1]["last_step"] == 15
    assert ep[0]["last_step"] == 9 and rd.per_epoch([WINDOWS[3]]) == []


def test_delivery_provenance_and_compare() -> None:
    run = {"run_id": "r1", "energy_kwh": 2.0, "measured_kwh": 1.5, "estimated_kwh": 0.5,
           "fallback_kwh": 1.0, "intensity_providers": ["uk"], "hosts": ["h1"], "zones": ["GB"],
           "n_events": 10, "duplicates": 2, "dead_letters": {"late": 3, "bad": 1},
           "last_epoch": 3, "method": "mixed"}  # fmt: skip
    assert rd.delivery(run) == {"events counted": 10, "duplicates dropped": 2,
                                "late (dead-lettered)": 3, "other dead letters": 1}
    text = " ".join(r["source"] for r in rd.provenance(run))
    assert "75.0 % measured" in text and "50.0 % of the energy charged a fallback" in text
    table = rd.compare_table([run, {"run_id": "r2", "energy_kwh": 1.0}])
    by = {r["figure"]: r for r in table}
    assert by["kWh per epoch"] == {"figure": "kWh per epoch", "r1": "0.5", "r2": "-"}
    assert by["energy (kWh)"]["r1"] == "2" and by["method"]["r2"] == "-"
