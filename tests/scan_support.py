"""Helpers for the duplicate-scan tests: ground-truth trees from the shared generators (found
as the benchmarks find them: `benchmarks.settings.GENERATORS_DIR`) and a WebSocket-driven
'scan and wait'."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from benchmarks.settings import GENERATORS_DIR

TERMINAL = ("scan.finished", "scan.failed", "scan.cancelled")


def _generator(name: str) -> Path:
    path = GENERATORS_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} not found (set BENCH_GENERATORS)")
    return path


def make_library_tree(dest: Path, *args: str) -> tuple[Path, dict[str, Any]]:
    """A small make_library.py tree (with --extras) and its manifest."""
    root = dest / "lib"
    command = [sys.executable, str(_generator("make_library.py")), "--root", str(root), "--extras", *args]
    subprocess.run(command, check=True, capture_output=True)
    manifest: dict[str, Any] = json.loads((dest / "lib.manifest.json").read_text())
    return root, manifest


def make_duptree(dest: Path, *args: str) -> tuple[Path, dict[str, Any]]:
    """A small make_duptree.py tree and its truth file."""
    root = dest / "tree"
    command = [sys.executable, str(_generator("make_duptree.py")), "--root", str(root), *args]
    subprocess.run(command, check=True, capture_output=True)
    truth: dict[str, Any] = json.loads((dest / "tree.truth.json").read_text())
    return root, truth


def inode_groups(root: Path, groups: list[list[str]]) -> list[list[tuple[int, int]]]:
    """Groups with each path replaced by its file identity, sorted (hard links compare equal)."""

    def identity(relative: str) -> tuple[int, int]:
        info = os.stat(root / relative)
        return (info.st_dev, info.st_ino)

    return sorted(sorted(identity(p) for p in group) for group in groups)


async def run_scan(client: TestClient[Any, Any], kind: str | None = None) -> list[dict[str, Any]]:
    """Start a scan (of `kind`, or the default) and return every event after `hello` up to the
    terminal one."""
    events: list[dict[str, Any]] = []
    async with client.ws_connect("/ws") as ws:
        hello = await ws.receive_json(timeout=30)
        assert hello["type"] == "hello"
        response = await client.post("/api/scan" if kind is None else f"/api/scan?kind={kind}")
        assert response.status == 202, await response.text()
        while True:
            event = await ws.receive_json(timeout=60)
            events.append(event)
            if event["type"] in TERMINAL:
                return events


async def scan_results(client: TestClient[Any, Any]) -> dict[str, Any]:
    events = await run_scan(client)
    assert events[-1]["type"] == "scan.finished", events[-1]
    response = await client.get("/api/duplicates")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body
