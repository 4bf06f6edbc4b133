"""schemathesis against our own OpenAPI document: no 5xx, every response matches the document.

A bounded number of examples per operation, against a real server process serving a
throwaway library (the generated deletes and trash-emptying may touch it freely).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from server.openapi import load_document

from .helpers import make_library
from .redis_support import free_port

ROOT = Path(__file__).resolve().parent.parent
schema = schemathesis.openapi.from_dict(load_document())


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("fuzz")
    library = make_library(folder / "library")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "--port",
            str(port),
            "--models-dir",
            str(library),
            "--cache-dir",
            str(folder / "cache"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
    yield url
    process.terminate()
    _, errors = process.communicate(timeout=30)
    assert b"Traceback" not in errors, errors.decode(errors="replace")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
def test_api_matches_its_document(case: schemathesis.Case, server_url: str) -> None:
    case.call_and_validate(base_url=server_url)
