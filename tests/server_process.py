"""Our server as a real process (`python -m server`), for tests that need one: load, faults,
workers, proxies, fuzzing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .redis_support import free_port

ROOT = Path(__file__).resolve().parent.parent


def get_json(url: str, timeout: float = 5) -> dict[str, object]:
    request = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: dict[str, object] = json.loads(response.read())
        return body


def distinct_instances(base_url: str, wanted: int = 2, within: float = 60) -> set[object]:
    """Poll /healthz over fresh connections until `wanted` different instances have answered."""
    instances: set[object] = set()
    deadline = time.monotonic() + within
    while len(instances) < wanted and time.monotonic() < deadline:
        try:
            instances.add(get_json(f"{base_url}/healthz")["instance"])
        except OSError:
            time.sleep(0.1)
    return instances


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid


def start_server(library: Path, cache: Path, *args: str, port: int | None = None) -> ServerProcess:
    chosen = port or free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "--port",
            str(chosen),
            "--models-dir",
            str(library),
            "--cache-dir",
            str(cache),
            *args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = ServerProcess(process, chosen)
    deadline = time.monotonic() + 60
    while True:
        try:
            get_json(f"{server.url}/healthz", timeout=2)
            return server
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                raise RuntimeError(f"the server did not start:\n{output}") from None
            time.sleep(0.05)


def stop_server(server: ServerProcess) -> str:
    """SIGTERM (graceful) and the server's whole output."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    output, _ = server.process.communicate(timeout=30)
    return output.decode(errors="replace")


@contextmanager
def running_server(library: Path, cache: Path, *args: str) -> Iterator[ServerProcess]:
    server = start_server(library, cache, *args)
    try:
        yield server
    finally:
        output = stop_server(server)
        assert "Traceback" not in output, output
