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


@pytest.mark.parametrize("env", [None, "retries", "budget", "breaker"])
def test_the_documented_brooker_commands_pass_with_each_environments_figures(
    env: str | None,
) -> None:
    # scenarios/published/README.md documents `... brooker-retries.yaml --env budget`: each
    # client strategy is judged by its own expectations (the scenario's `environments`).
    args = [str(REPO / "scenarios/published/brooker-retries.yaml")]
    if env is not None:
        args += ["--env", env]
    result = CliRunner().invoke(simulate, args)
    assert result.exit_code == 0, result.output
    assert "all 2 expectations passed" in result.output
