"""The README's Quick start holds exactly two commands, and CI runs the second one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _quick_start_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```[a-z]*\n(.*?)```", section, flags=re.S)]


def test_quick_start_has_run_then_test_command() -> None:
    blocks = _quick_start_blocks()
    assert len(blocks) == 2
    run, test = blocks
    assert "python -m server" in run and "pytest" in test
    assert "\n" not in run and "\n" not in test


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _quick_start_blocks()[1] in ci
