"""Load a scenario file: YAML -> :class:`Scenario`, checked against its mesh, errors located.

Parsing and schema errors come from the spec language's own machinery
(:func:`meshspec.spec.document.validate_data`), so they look exactly like spec errors.
References to the mesh (services, edges) and expectations are checked here, each error at the
node that holds the bad value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshspec.sim.behaviour import DEFAULT_KEY
from meshspec.sim.disturbance import disturbances
from meshspec.sim.estimate import E_TOO_BIG, check_caps
from meshspec.sim.expect import (
    AlertExpectation,
    AnyExpectation,
    ExpectationError,
    did_you_mean,
    parse,
)
from meshspec.sim.mesh import MeshModel, mesh_from_spec
from meshspec.sim.metrics import ENTRY
from meshspec.sim.scenario import Partition, Scenario
from meshspec.spec.diagnostics import Diagnostic, SpecError
from meshspec.spec.document import Provenance, validate_data
from meshspec.spec.yamlio import load_yaml_document

E_UNKNOWN_SERVICE = "E0501"
E_UNKNOWN_EDGE = "E0502"
E_EXPECTATION = "E0503"
E_OUTSIDE_RUN = "E0504"
E_NO_MESH = "E0505"


@dataclass(frozen=True)
class LoadedScenario:
    path: Path
    scenario: Scenario
    expectations: tuple[AnyExpectation, ...]
    mesh_path: Path | None


def read_scenario(path: Path) -> tuple[Scenario, Provenance]:
    """Parse and validate the file alone (no mesh); SpecError when invalid."""
    shown = str(path)
    data, lookup = load_yaml_document(path, shown)
    provenance = Provenance(shown, lookup)
    return validate_data(Scenario, data, provenance), provenance


def load_scenario(
    path: Path, mesh: MeshModel | None = None, env: str | None = None
) -> tuple[LoadedScenario, MeshModel]:
    """The scenario and the mesh it names (or ``mesh``, when given: ``--compare``); ``env``
    is the spec's environment in use (the scenario's own, unless the command line says)."""
    scenario, provenance = read_scenario(path)
    mesh_path = (path.parent / scenario.mesh).resolve() if scenario.mesh else None
    if mesh is None:
        if mesh_path is None:
            raise SpecError(
                [
                    provenance.diagnostic(
                        (),
                        E_NO_MESH,
                        "no mesh: name one with 'mesh:' or give SPEC on the command line",
                    )
                ]
            )
        mesh = load_mesh(mesh_path, scenario.env)
    problems: list[Diagnostic] = []
    expectations = check(scenario, mesh, provenance, problems, env or scenario.env)
    if problems:
        raise SpecError(problems)
    return LoadedScenario(path, scenario, expectations, mesh_path), mesh


def load_mesh(path: Path, env: str | None = None, overrides: tuple[str, ...] = ()) -> MeshModel:
    from meshspec.spec import load_spec

    return mesh_from_spec(load_spec(path, env=env, overrides=overrides))


def expectations_for(
    scenario: Scenario, env: str | None
) -> tuple[tuple[str | int, ...], tuple[str, ...]]:
    """The expectations that hold with the spec's environment ``env`` (and where they are):
    the environment's own list when the scenario gives one, else the top-level ``expect``."""
    if env is not None and env in scenario.environments:
        return ("environments", env, "expect"), scenario.environments[env].expect
    return ("expect",), scenario.expect


def _aside(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or ``""``."""
    hint = did_you_mean(name, sorted(known)).removeprefix("; ")
    return f" ({hint})" if hint else ""


def check(
    scenario: Scenario,
    mesh: MeshModel,
    provenance: Provenance,
    problems: list[Diagnostic],
    env: str | None = None,
) -> tuple[AnyExpectation, ...]:
    """Every reference to the mesh names something in it; expectations parse."""
    services = mesh.services
    known = ", ".join(sorted(services))

    def service(name: str | None, path: tuple[str | int, ...], key: bool = False) -> None:
        if name is not None and name not in services:
            problems.append(
                provenance.diagnostic(
                    path,
                    E_UNKNOWN_SERVICE,
                    f"unknown service {name!r}{_aside(name, services)}; the mesh has: {known}",
                    key=key,
                )
            )

    for i, traffic in enumerate(scenario.traffic):
        service(traffic.to, ("traffic", i, "to"))
    behaviour = scenario.behaviour
    default = behaviour.get(DEFAULT_KEY)
    if default is not None and default.calls:
        problems.append(
            provenance.diagnostic(
                ("behaviour", "default", "calls"),
                E_UNKNOWN_EDGE,
                "fan-out probabilities belong to a service's edges, not to default",
                key=True,
            )
        )
    for name, item in behaviour.items():
        if name == DEFAULT_KEY:
            continue
        if name not in services:
            service(name, ("behaviour", name), key=True)
            continue
        for upstream in item.calls:
            if upstream not in services[name].upstreams:
                edges = ", ".join(services[name].upstreams) or "none"
                hint = _aside(upstream, services[name].upstreams)
                problems.append(
                    provenance.diagnostic(
                        ("behaviour", name, "calls", upstream),
                        E_UNKNOWN_EDGE,
                        f"{name} has no upstream {upstream!r} in the mesh{hint}; its upstreams: "
                        f"{edges}",
                        key=True,
                    )
                )
    entries = {traffic.to for traffic in scenario.traffic}
    for key in scenario.network:
        caller, _, upstream = key.partition("->")
        if key == DEFAULT_KEY or (caller == ENTRY and upstream in entries):
            continue
        if caller not in services or upstream not in services[caller].upstreams:
            problems.append(
                provenance.diagnostic(
                    ("network", key),
                    E_UNKNOWN_EDGE,
                    f"no edge {key!r} in the mesh: name one as caller->upstream, "
                    f"{ENTRY}->entry, or use default",
                    key=True,
                )
            )
    if scenario.warmup >= scenario.duration:
        problems.append(
            provenance.diagnostic(
                ("warmup",),
                E_OUTSIDE_RUN,
                f"the warm-up ({scenario.warmup:g}s) lasts the whole run ({scenario.duration:g}s):"
                " no request would count in the latency totals",
            )
        )
    for i, fault in enumerate(scenario.faults):
        if fault.at >= scenario.duration:
            problems.append(
                provenance.diagnostic(
                    ("faults", i, "at"),
                    E_OUTSIDE_RUN,
                    f"the fault starts at {fault.at:g}s, at or after the end of the run "
                    f"({scenario.duration:g}s)",
                )
            )
        if isinstance(fault, Partition):
            for j, name in enumerate(fault.between):
                service(name, ("faults", i, "between", j))
        else:
            service(getattr(fault, "service", None), ("faults", i, "service"))
            chosen = getattr(fault, "instances", None)
            target = services.get(getattr(fault, "service", "") or "")
            if isinstance(chosen, list) and target is not None:
                ids = {e.id for e in target.endpoints}
                for j, instance in enumerate(chosen):
                    if instance not in ids:
                        problems.append(
                            provenance.diagnostic(
                                ("faults", i, "instances", j),
                                E_UNKNOWN_SERVICE,
                                f"unknown instance {instance!r} of {target.name}"
                                f"{_aside(instance, ids)}; it has: " + ", ".join(sorted(ids)),
                            )
                        )
    windows = disturbances(scenario)
    names = [w.name for w in windows]
    for i, fault in enumerate(scenario.faults):
        if fault.name is not None and names.count(fault.name) > 1:
            problems.append(
                provenance.diagnostic(
                    ("faults", i, "name"),
                    E_EXPECTATION,
                    f"another fault, spike or ramp is also named {fault.name!r}",
                )
            )
    out: list[AnyExpectation] = []
    expect_path, texts = expectations_for(scenario, env)
    for i, text in enumerate(texts):
        try:
            exp = parse(text)
        except ExpectationError as error:
            problems.append(provenance.diagnostic((*expect_path, i), E_EXPECTATION, str(error)))
            continue
        if isinstance(exp, AlertExpectation):
            problem = alert_problem(exp, mesh)
            if problem is not None:
                code, message = problem
                problems.append(provenance.diagnostic((*expect_path, i), code, message))
            else:
                out.append(exp)
            continue
        if exp.disturbance is not None and exp.disturbance not in names:
            problems.append(
                provenance.diagnostic(
                    (*expect_path, i),
                    E_EXPECTATION,
                    f"no disturbance named {exp.disturbance!r}; the scenario has: "
                    + (", ".join(names) or "none"),
                )
            )
            continue
        bad = [s for s in exp.services if s not in services]
        if bad:
            service(bad[0], (*expect_path, i))
            continue
        if exp.upstream is not None and exp.upstream not in services[exp.caller].upstreams:
            problems.append(
                provenance.diagnostic(
                    (*expect_path, i),
                    E_UNKNOWN_EDGE,
                    f"{exp.caller} does not call {exp.upstream} in the mesh",
                )
            )
            continue
        out.append(exp)
    for path, message in check_caps(scenario, mesh):
        problems.append(provenance.diagnostic(path, E_TOO_BIG, message))
    return tuple(out)


def alert_problem(exp: AlertExpectation, mesh: MeshModel) -> tuple[str, str] | None:
    """(code, message) when the alert's edge is not in the mesh or the alert cannot fire on
    it (a breaker alert on an edge without a circuit breaker, a budget one without a budget)."""
    services = mesh.services
    for name in exp.services:
        if name not in services:
            hint = did_you_mean(name, list(services))
            return E_UNKNOWN_SERVICE, f"unknown service {name!r}{hint}"
    upstreams = services[exp.caller].upstreams
    policy = upstreams.get(exp.upstream)
    if policy is None:
        hint = did_you_mean(exp.upstream, list(upstreams))
        calls = ", ".join(upstreams) or "nothing"
        return (
            E_UNKNOWN_EDGE,
            f"{exp.caller} does not call {exp.upstream} in the mesh{hint} ({exp.caller} calls: "
            f"{calls})",
        )
    from meshspec.compile.emitters import prometheus  # only with alert expectations

    if exp.alert == prometheus.BREAKER_ALERT and policy.circuit_breaker is None:
        return E_EXPECTATION, f"{exp.subject} has no circuit breaker: {exp.alert} cannot fire on it"
    if exp.alert == prometheus.BUDGET_ALERT and policy.retry.budget is None:
        return E_EXPECTATION, f"{exp.subject} has no retry budget: {exp.alert} cannot fire on it"
    return None


def as_data(loaded: LoadedScenario) -> dict[str, Any]:
    return {"name": loaded.scenario.name, "file": str(loaded.path)}
