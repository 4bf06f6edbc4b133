"""A pytest plugin: no test of a real part (browser, Redis, ffmpeg, nginx, unzip ...) is skipped quietly.

Every skip is listed at the end of the run in a section of its own, with its reason, so a
green run cannot hide what was not tested. With `CI=true` a skip is a failure: CI installs
everything the suite needs (`scripts/install-test-tools`), so a skip there means a missing part.
Loaded through `addopts = "-p tests.real_parts"` in pyproject.toml.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

_skipped: list[tuple[str, str]] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    _skipped.append((item.nodeid, reason))
    if os.environ.get("CI") == "true":
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every real part must be present: {reason}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _skipped:
        return
    terminalreporter.section("NOT TESTED", sep="!", red=True, bold=True)
    reasons: dict[str, list[str]] = {}
    for nodeid, reason in _skipped:
        reasons.setdefault(reason, []).append(nodeid)
    for reason, nodeids in reasons.items():
        terminalreporter.write_line(f"{len(nodeids)} test(s) skipped: {reason}", red=True, bold=True)
        for nodeid in nodeids[:5]:
            terminalreporter.write_line(f"    {nodeid}")
        if len(nodeids) > 5:
            terminalreporter.write_line(f"    ... and {len(nodeids) - 5} more")
    terminalreporter.write_line(
        "Run `bash scripts/install-test-tools` as root (or install what it names) to test them.", bold=True
    )
