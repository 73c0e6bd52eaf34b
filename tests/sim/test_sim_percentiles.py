"""The summary's latency figures, in plain Python, against numpy's own (the reference they
replaced): the very same floats."""

from __future__ import annotations

import math
from array import array

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from meshspec.sim.metrics import _percentiles, _series_percentiles, percentile

latencies = st.lists(
    st.floats(min_value=0.0, max_value=1e4, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=300,
)
percents = st.one_of(st.sampled_from([0, 50, 99, 99.9, 100]), st.floats(0, 100))


@given(latencies, percents)
def test_a_percentile_is_the_float_numpy_computes(values: list[float], p: float) -> None:
    assert percentile(sorted(values), p) == float(np.percentile(np.array(values), p))


@given(latencies)
def test_the_mean_is_numpys_to_twelve_digits_and_within_the_values(values: list[float]) -> None:
    mean = _percentiles(values)["latency_mean"]
    assert mean is not None
    assert math.isclose(mean, float(np.mean(values)), rel_tol=1e-12, abs_tol=1e-300)
    assert min(values) <= mean <= max(values)


def test_no_latency_gives_no_figures() -> None:
    assert set(_percentiles([]).values()) == {None}


@given(
    st.lists(
        st.tuples(st.floats(0.0, 10.0, allow_nan=False), st.integers(0, 4)),
        max_size=200,
    )
)
def test_each_second_has_the_values_at_its_own_ranks(pairs: list[tuple[float, int]]) -> None:
    latency = array("d", [value for value, _ in pairs])
    ended = array("l", [second for _, second in pairs])
    p50, p99 = _series_percentiles(latency, ended, 4, [0.5, 0.99])  # second 4: the drain
    for second in range(4):
        values = sorted(value for value, s in pairs if s == second)
        if not values:
            assert p50[second] is None and p99[second] is None
            continue
        n = len(values)
        assert p50[second] == values[min(n - 1, int(0.5 * n))]
        assert p99[second] == values[min(n - 1, int(0.99 * n))]
