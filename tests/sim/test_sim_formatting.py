"""Numbers and seeds in the summary and the report are written as a person writes them:
``-2.5s``, not ``-2.5e+03ms``; ``4 seeds (11-14)``, not ``seeds 11``."""

from __future__ import annotations

import pytest

from meshspec.sim.expect import Kind, format_value, plain_number
from meshspec.sim.report import describe_seeds


@pytest.mark.parametrize(
    ("kind", "value", "shown"),
    [
        (Kind.TIME, -2.5, "-2.5s"),  # a --compare delta of the breaker's open time
        (Kind.TIME, 2.5, "2.5s"),
        (Kind.TIME, -0.25, "-250ms"),
        (Kind.TIME, 0.0123, "12.3ms"),
        (Kind.TIME, 0.9996, "1s"),  # rounds to a whole second: not 1000ms
        (Kind.TIME, 0.999, "999ms"),
        (Kind.TIME, 2500.0, "2500s"),
        (Kind.TIME, 0.0, "0ms"),
        (Kind.RATIO, 0.995, "99.5%"),
        (Kind.RATIO, -0.15, "-15%"),
        (Kind.MULTIPLE, 1500.0, "1500x"),
        (Kind.MULTIPLE, 0.852, "0.852x"),
        (Kind.RATE, 123456.7, "123457/s"),
        (Kind.RATE, 86.543, "86.54/s"),
        (Kind.COUNT, 1_500_000.0, "1500000"),
        (Kind.COUNT, -3.0, "-3"),
        (Kind.COUNT, 1.83713, "1.84"),
    ],
)
def test_values_are_written_without_exponents(kind: Kind, value: float, shown: str) -> None:
    assert format_value(kind, value) == shown


@pytest.mark.parametrize("value", [1e-9, 3e-7, 1e12, -4.5e9, 123.456, -0.000123])
def test_plain_numbers_never_use_exponent_notation(value: float) -> None:
    text = plain_number(value, 3)
    assert "e" not in text.lower()
    assert float(text) == pytest.approx(value, rel=5e-3)


@pytest.mark.parametrize(
    ("seeds", "shown"),
    [
        ([11], "seed 11"),
        ([11, 12, 13, 14], "4 seeds (11-14)"),
        ([0, 1], "2 seeds (0-1)"),
        ([1, 5, 6, 9], "4 seeds (1, 5-6, 9)"),
    ],
)
def test_seeds_are_described_as_ranges(seeds: list[int], shown: str) -> None:
    assert describe_seeds(seeds) == shown
