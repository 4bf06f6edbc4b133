"""Our server as a real process (`python -m server`), for tests that need one: load, faults,
workers, proxies, fuzzing. Built on `benchmarks.processes`, the one process harness of the tests
and the benchmarks; the server's output goes to a log file beside its cache folder."""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.processes import ServerProcess, catalog_argv, free_port, start_process

__all__ = ["ServerProcess", "distinct_instances", "get_json", "running_server", "start_server", "stop_server"]


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


def start_server(
    library: Path,
    cache: Path,
    *args: str,
    port: int | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> ServerProcess:
    """Our server over `library` with `cache`, once it answers /healthz; its log sits beside `cache`.

    `preexec_fn` runs in the child before exec (e.g. to drop privileges)."""
    chosen = port or free_port()
    cache.parent.mkdir(parents=True, exist_ok=True)
    handle, log = tempfile.mkstemp(dir=cache.parent, prefix="server-", suffix=".log")
    os.close(handle)
    return start_process(
        "archive-catalog",
        catalog_argv(library, cache, chosen, *args),
        port=chosen,
        log_path=Path(log),
        ready_path="/healthz",
        env={"PYTHONUNBUFFERED": "1"},
        preexec_fn=preexec_fn,
    )


def stop_server(server: ServerProcess) -> str:
    """SIGTERM (graceful) and the server's whole output."""
    return server.stop()


@contextmanager
def running_server(library: Path, cache: Path, *args: str) -> Iterator[ServerProcess]:
    server = start_server(library, cache, *args)
    try:
        yield server
    finally:
        output = stop_server(server)
        assert "Traceback" not in output, output
