"""A misspelt scenario field or service name gets a "did you mean", located at the name, as
in a spec: ``unknown field 'fr'; did you mean 'for'? (at faults[0].fr)``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from simrun import SCENARIO

from meshspec.sim.load import load_scenario
from meshspec.spec import SpecError
from meshspec.spec.diagnostics import Diagnostic

MISSPELT_FIELDS = [
    ("seed: 3", "sed: 3", "sed", "'seed'"),
    ("{to: front, rate: 100/s}", "{to: front, rat: 100/s}", "traffic[0].rat", "'rate'"),
    ("{at: 5s, for: 5s,", "{at: 5s, fr: 5s,", "faults[0].fr", "'for'"),
    # the fault's kind decides its fields: a crash has 'instances'
    (
        "instances: 50%, fault: crash",
        "instancs: 50%, fault: crash",
        "faults[0].instancs",
        "'instances'",
    ),
    ("{median: 5ms,", "{medain: 5ms,", "behaviour.default.latency.medain", "'median'"),
]
MISSPELT_SERVICES = [
    ("{to: front,", "{to: fornt,", "traffic[0].to", "'front'"),
    ("service: back,", "service: bakc,", "faults[0].service", "'back'"),
    ("default: {latency", "frnt: {latency", "behaviour.frnt", "'front'"),
    ("- front.success_rate", "- frnt.success_rate", "expect[0]", "'front'"),
]


def _diagnostics(write: Callable[[str, str], Path], text: str) -> list[Diagnostic]:
    path = write("scenario.yaml", text)
    with pytest.raises(SpecError) as caught:
        load_scenario(path)
    return caught.value.diagnostics


@pytest.mark.parametrize(("old", "new", "at", "meant"), MISSPELT_FIELDS)
def test_a_misspelt_field_is_the_only_error_and_gets_a_did_you_mean(
    write: Callable[[str, str], Path], tiny: Path, old: str, new: str, at: str, meant: str
) -> None:
    assert old in SCENARIO
    (found,) = _diagnostics(write, SCENARIO.replace(old, new, 1))
    name = at.rsplit(".", 1)[-1]
    assert (found.code, found.path) == ("E0100", at)
    assert f"did you mean {meant}?" in found.message, found.message
    line = SCENARIO.replace(old, new, 1).splitlines()[found.line - 1]
    assert line[found.column - 1 :].startswith(name), (line, found.column)


@pytest.mark.parametrize(("old", "new", "at", "meant"), MISSPELT_SERVICES)
def test_a_misspelt_service_gets_a_did_you_mean(
    write: Callable[[str, str], Path], tiny: Path, old: str, new: str, at: str, meant: str
) -> None:
    assert old in SCENARIO
    (found,) = _diagnostics(write, SCENARIO.replace(old, new, 1))
    assert (found.code, found.path) == ("E0501", at)
    assert f"(did you mean {meant}?); the mesh has: back, front" in found.message, found.message


def test_a_name_like_none_in_the_mesh_gets_no_guess(
    write: Callable[[str, str], Path], tiny: Path
) -> None:
    (found,) = _diagnostics(write, SCENARIO.replace("{to: front,", "{to: zzz,", 1))
    assert found.message == "unknown service 'zzz'; the mesh has: back, front"


def test_a_misspelt_upstream_in_calls_gets_a_did_you_mean(
    write: Callable[[str, str], Path], tiny: Path
) -> None:
    text = SCENARIO.replace("behaviour:\n", "behaviour:\n  front: {calls: {bak: 1}}\n", 1)
    (found,) = _diagnostics(write, text)
    assert (found.code, found.path) == ("E0502", "behaviour.front.calls.bak")
    assert "(did you mean 'back'?)" in found.message, found.message
