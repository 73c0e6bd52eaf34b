"""docs/spec.md holds THE error-code table: every code the spec language emits is in it,
and it lists no code that nothing emits."""

from __future__ import annotations

import re

from support import REPO

CODE = re.compile(r'"(E\d{4})"')
ROW = re.compile(r"^\| (E\d{4}) \|", re.MULTILINE)


def test_error_code_table_matches_the_code() -> None:
    sources = [*(REPO / "meshspec" / "spec").glob("*.py"), REPO / "meshspec/commands/validate.py"]
    emitted = {code for path in sources for code in CODE.findall(path.read_text())}
    table = ROW.findall((REPO / "docs" / "spec.md").read_text())
    assert len(table) == len(set(table)), "a code is listed twice"
    assert set(table) == emitted
