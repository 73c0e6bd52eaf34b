"""The runtime as ``pip install ./runtime`` builds it: compiled by mypyc, or plain Python.

The editable install the other tests import is always plain Python (``runtime/setup.py``). Here
the wheel a user gets is built for real (about a minute on two cores), unpacked, and the
runtime's own test suites run again in a subprocess that imports it first, so that both builds
pass the same tests. A machine that cannot compile still gets a working plain-Python wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from support import REPO, missing

RUNTIME = REPO / "runtime"
SUITES = [
    "tests/runtime_call",
    "tests/runtime_policies",
    "tests/runtime_mesh",
    "tests/observe",
    "tests/integrations",
    "tests/sim",
]
"""Every suite that runs a compiled module (the policies, the drivers, the call log)."""
HOT_MODULES = [
    "meshspec_runtime/policy/call",
    "meshspec_runtime/policy/upstream",
    "meshspec_runtime/policy/breaker",
    "meshspec_runtime/policy/balancer/peak_ewma",
    "meshspec_runtime/drivers/sync",
    "meshspec_runtime/drivers/aio",
    "meshspec_runtime/drivers/answers",
    "meshspec_runtime/deadline",
    "meshspec_runtime/upstream_handle",
    "meshspec_runtime/integrations/httpx_send",
    "meshspec_runtime/integrations/requests_send",
    "meshspec_runtime/observe/calls",
]


def build_wheel(out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Builds the wheel of a fresh copy of ``runtime/`` (pip builds in the tree it is given, and
    would reuse what an earlier build left in its ``build/``)."""
    source = out.parent / f"{out.name}-source"
    shutil.copytree(RUNTIME, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    # A mypy configuration above the source, as a checkout's own is: the build must not read
    # it (this one would refuse the request path; the checkout's refused the integrations
    # wherever their extras were not installed).
    (out.parent / "mypy.ini").write_text("[mypy]\ndisallow_any_expr = True\n")
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=900,
        check=False,
    )


def unpack(out: Path, into: Path) -> list[str]:
    """Unpacks the one wheel in ``out`` into ``into``; returns its file names."""
    (wheel,) = out.glob("meshspec_runtime-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(into)
        return archive.namelist()


def extension_modules(names: list[str]) -> set[str]:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return {name.removesuffix(suffix) for name in names if name.endswith(suffix)}


def can_compile() -> bool:
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    compiler = sysconfig.get_config_var("CC") or "cc"
    found = subprocess.run(
        ["sh", "-c", f"command -v {compiler.split()[0]}"], capture_output=True, check=False
    )
    return headers.is_file() and found.returncode == 0


@pytest.fixture(scope="module")
def compiled_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not can_compile():
        missing("a C compiler and Python's headers are needed to compile the runtime")
    out = tmp_path_factory.mktemp("wheel")
    built = build_wheel(out)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "not compiled" not in built.stdout + built.stderr, built.stderr[-3000:]
    into = tmp_path_factory.mktemp("compiled")
    names = unpack(out, into)
    assert set(HOT_MODULES) <= extension_modules(names)
    return into


def test_the_compiled_runtime_passes_the_runtime_tests(compiled_runtime: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(compiled_runtime)}
    env.pop("MESHSPEC_LONG_TESTS", None)  # the minutes-long reproductions ran already
    probe = subprocess.run(
        [sys.executable, "-c", "import meshspec_runtime as m; print(m.is_compiled(), m.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert probe.stdout.split() == [
        "True",
        str(compiled_runtime / "meshspec_runtime" / "__init__.py"),
    ]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]


@pytest.mark.parametrize(
    "paths",
    [
        ["examples/shop.yaml", "scenarios/payments-brownout.yaml"],
        ["examples/shop.yaml", "scenarios/inventory-slowdown.yaml"],
        ["scenarios/published/hedging-p95.yaml"],  # names its own mesh
    ],
)
def test_both_builds_simulate_the_same_run(compiled_runtime: Path, paths: list[str]) -> None:
    # the simulator drives the policies: the same seed must give the same report, byte for byte
    command = [str(Path(sys.executable).with_name("meshspec")), "simulate"]
    command += [str(REPO / path) for path in paths] + ["--json"]
    reports = []
    for path in (None, compiled_runtime):
        env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
        if path is not None:
            env["PYTHONPATH"] = str(path)
        run = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        assert run.returncode in (0, 1), run.stderr[-3000:]  # 1: an expectation failed
        reports.append(run.stdout)
    assert '"expectations"' in reports[0]
    assert reports[0] == reports[1]


def test_without_a_compiler_the_wheel_is_plain_python(tmp_path: Path) -> None:
    out = tmp_path / "wheel"
    built = build_wheel(out, CC="false")  # a compiler that fails every file
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    relayed = built.stderr  # where pip -v relays what the build prints
    assert "meshspec-runtime: not compiled" in relayed, relayed[-3000:]
    names = unpack(out, tmp_path / "plain")
    assert extension_modules(names) == set()
    assert "meshspec_runtime/policy/call.py" in names
    probe = subprocess.run(
        [sys.executable, "-c", "import meshspec_runtime as m; print(m.is_compiled())"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "plain")},
        check=True,
    )
    assert probe.stdout.strip() == "False"


def test_the_editable_install_is_plain_python() -> None:
    import meshspec_runtime

    # an edited module is the one that runs: no stale compiled copy shadows it
    assert not meshspec_runtime.is_compiled()
    assert not list(
        (RUNTIME / "meshspec_runtime").rglob("*" + sysconfig.get_config_var("EXT_SUFFIX"))
    )
