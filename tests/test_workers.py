"""--workers N: N processes answer on one port (SO_REUSEPORT) and act as one service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .redis_support import SHARED_URL, free_port, require_redis

ROOT = Path(__file__).resolve().parent.parent


def _get(url: str) -> dict[str, str]:
    request = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(request, timeout=5) as response:
        body: dict[str, str] = json.loads(response.read())
        return body


def test_two_workers_share_one_port(library_root: Path, tmp_path: Path) -> None:
    require_redis()
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "--workers",
            "2",
            "--port",
            str(port),
            "--models-dir",
            str(library_root),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--redis-url",
            SHARED_URL,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        instances: set[str] = set()
        deadline = time.monotonic() + 60
        while len(instances) < 2 and time.monotonic() < deadline:
            try:
                instances.add(_get(f"http://127.0.0.1:{port}/healthz")["instance"])
            except OSError:
                time.sleep(0.1)
        assert len(instances) == 2, "connections were not spread over two worker processes"
        sites = _get(f"http://127.0.0.1:{port}/api/sites")
        assert [s["name"] for s in sites["sites"]] == ["alpha", "beta"]  # type: ignore[index]
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output.decode(errors="replace")
    assert b"workers:  2" in output
