"""The reusable machinery: any pydantic model, located diagnostics, their formats."""

from __future__ import annotations

import gc
from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Field
from spec_support import MINIMAL, WriteSpec

from meshspec.spec import Diagnostic, SpecError, load_spec, validate_document
from meshspec.spec.units import Duration


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    at: Duration
    service: str


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    seed: Annotated[int, Field(ge=0)]
    steps: list[Step]


def test_validate_document_with_another_model(write_spec: WriteSpec) -> None:
    path = write_spec("name: brownout\nseed: 7\nsteps:\n  - {at: 60s, service: payments}\n")
    scenario = validate_document(path, Scenario)
    assert scenario.steps[0].at == 60.0


def test_validate_document_locates_every_error(write_spec: WriteSpec) -> None:
    path = write_spec(
        "name: brownout\nseed: -1\nsteps:\n"
        "  - {at: 60, service: payments}\n"
        "  - {at: 1s, srvice: x}\n"
    )
    with pytest.raises(SpecError) as caught:
        validate_document(path, Scenario, display="scenario.yaml")
    assert [d.format() for d in caught.value.diagnostics] == [
        "scenario.yaml:2:7: error[E0103]: expected a value at least 0, found -1 (at seed)",
        "scenario.yaml:4:10: error[E0105]: expected a duration with a unit such as 250ms, 2s "
        "or 1m30s, found 60 (add a unit: '60s' or '60ms') (at steps[0].at)",
        "scenario.yaml:5:5: error[E0102]: missing required field 'service' (at steps[1].service)",
        "scenario.yaml:5:14: error[E0100]: unknown field 'srvice'; did you mean 'service'? "
        "(at steps[1].srvice)",
    ]


def test_github_format_escapes() -> None:
    diagnostic = Diagnostic("a,b:c.yaml", 3, 4, "E0101", "x", "100% wrong\nreally")
    assert diagnostic.format_github() == (
        "::error file=a%2Cb%3Ac.yaml,line=3,col=4,title=E0101::100%25 wrong%0Areally (at x)"
    )


def test_later_override_replaces_what_an_overlay_recorded(write_spec: WriteSpec) -> None:
    text = MINIMAL + (
        "environments:\n  two:\n    services:\n      api:\n"
        "        instances: [{address: 10.0.1.1}, {address: 10.0.1.2}]\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(text), env="two", overrides=["services.api={port: 1, instances: []}"])
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.file == "--set #1"
    assert diagnostic.path == "services.api.instances"


def test_garbage_collector_is_back_on_after_loading(write_spec: WriteSpec) -> None:
    assert gc.isenabled()
    load_spec(write_spec(MINIMAL))
    assert gc.isenabled()
    with pytest.raises(SpecError):
        load_spec(write_spec(MINIMAL.replace("port: 8080", "port: 0")))
    assert gc.isenabled()
