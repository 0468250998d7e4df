from hypothesis import given
from hypothesis import strategies as st

from collector.energy import (
    counter_delta,
    cpu_share,
    ram_model_j,
    tdp_x_util_j,
    trapezoid_j,
    utilisation,
)


def test_counter_delta_plain_and_wrap() -> None:
    assert counter_delta(100, 350, 1000) == 250
    assert counter_delta(900, 100, 1000) == 200  # wrapped once at max_energy_range_uj
    assert counter_delta(900, 100, None) == 100  # unknown range: a reset, count from 0


@given(
    st.integers(min_value=1, max_value=2**40),
    st.integers(min_value=0),
    st.integers(min_value=0),
)
def test_wrap_recovers_true_increase(max_range: int, start: int, inc: int) -> None:
    start %= max_range
    inc %= max_range
    assert counter_delta(start, (start + inc) % max_range, max_range) == inc


def test_share_and_utilisation_bounds() -> None:
    assert cpu_share(1.0, 4.0) == 0.25
    assert cpu_share(5.0, 4.0) == 1.0
    assert cpu_share(1.0, 0.0) == 0.0
    assert utilisation(1.0, 2.0) == 0.5
    assert utilisation(1.0, 0.0) == 0.0


def test_models_and_integration() -> None:
    assert tdp_x_util_j(100, 0.5, 2.0) == 100.0
    assert ram_model_j(0.375, 8 * 2**30, 1.0) == 3.0  # Crucial: 3 W per 8 GB
    assert trapezoid_j([(0.0, 10.0), (1.0, 30.0), (3.0, 30.0)]) == 20.0 + 60.0
    assert trapezoid_j([(0.0, 10.0)]) == 0.0
