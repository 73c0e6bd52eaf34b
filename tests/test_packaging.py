"""The hand-written package list in pyproject.toml covers every subpackage."""

from __future__ import annotations

import tomllib

from support import REPO


def test_every_subpackage_is_listed() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "meshspec").rglob("__init__.py")
    }
    assert found <= listed, f"add to pyproject.toml [tool.setuptools] packages: {found - listed}"


def test_runtime_never_imports_meshspec() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "runtime" / "meshspec_runtime").rglob("*.py")
        if "import meshspec\n" in path.read_text()
        or "from meshspec " in path.read_text()
        or "from meshspec." in path.read_text()
    ]
    assert offenders == []
