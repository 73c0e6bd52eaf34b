"""The scenarios shipped beside examples/shop.yaml gate as their comments say: the brownout
(the README's demo) passes every expectation, the whole-inventory slowdown fails two."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from support import REPO

from meshspec.commands.simulate import command as simulate

pytestmark = pytest.mark.slow


def test_payments_brownout_passes_against_the_shop_example() -> None:
    result = CliRunner().invoke(
        simulate,
        [str(REPO / "examples/shop.yaml"), str(REPO / "scenarios/payments-brownout.yaml")],
    )
    assert result.exit_code == 0, result.output
    assert "all 5 expectations passed" in result.output


def test_a_whole_inventory_slowdown_fails_the_gate() -> None:
    result = CliRunner().invoke(simulate, [str(REPO / "scenarios/inventory-slowdown.yaml")])
    assert result.exit_code == 1, result.output
    assert "FAIL web.success_rate >= 99%" in result.output
