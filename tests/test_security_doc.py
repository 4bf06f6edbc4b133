"""SECURITY.md names the tests that prove its promises: every one it names must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+\*?))?`")


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_test_security_md_names_exists() -> None:
    text = (ROOT / "SECURITY.md").read_text()
    references = REFERENCE.findall(text)
    assert len(references) >= 15
    for file, name in references:
        path = ROOT / file
        assert path.is_file(), file
        if name:
            names = _test_names(path)
            found = [n for n in names if n.startswith(name[:-1])] if name.endswith("*") else {name} & names
            assert found, f"{file}::{name} is named in SECURITY.md but does not exist"
    # bare names listed after a file (`test_…` in the same sentence) must exist somewhere in tests/
    every = set().union(*(_test_names(p) for p in (ROOT / "tests").glob("test_*.py")))
    for bare in re.findall(r"`(test_\w+)`", text):
        assert bare in every, f"{bare} is named in SECURITY.md but does not exist"
