"""HTTP helpers shared by test modules: the outside linter (httplint) over our responses, a plain
GET returning (status, headers, body), waiting until the download service is idle, and reading a
ZIP back with two independent readers (`zipfile` and `unzip -t`)."""

from __future__ import annotations

import asyncio
import io
import subprocess
import zipfile
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from httplint import HttpResponseLinter
from httplint.note import levels
from multidict import CIMultiDictProxy

from server import keys

from .conftest import Client

# The contract asks for `public` on media; the linter calls it "probably not necessary".
ACCEPTED_WARNINGS = {"Cache-Control: public is probably not necessary."}


def lint(status: int, reason: str, raw_headers: list[tuple[bytes, bytes]], body: bytes) -> list[str]:
    """The linter's BAD notes and unaccepted WARN notes on one response."""
    linter = HttpResponseLinter()
    linter.process_response_topline(b"HTTP/1.1", str(status).encode(), reason.encode())
    linter.process_headers(raw_headers)
    linter.feed_content(body)
    linter.finish_content(True)
    problems = []
    for note in linter.notes:
        if type(note).__module__ == "httplint.status":
            continue  # notes that only explain the status code (a 400 is meant to be a 400)
        summary = note.summary if isinstance(note.summary, str) else str(note.summary)
        if note.level == levels.BAD or (note.level == levels.WARN and summary not in ACCEPTED_WARNINGS):
            problems.append(f"{note.level.value}: {summary}")
    return problems


async def lint_response(client: TestClient[Any, Any], url: str, headers: dict[str, str] | None = None) -> list[str]:
    """GET `url` (body left compressed, as sent) and lint the response."""
    response = await client.get(url, headers=headers or {}, auto_decompress=False)
    body = await response.read()
    return lint(response.status, response.reason or "", list(response.raw_headers), body)


async def get_json(client: TestClient[Any, Any], url: str, status: int = 200) -> Any:
    """GET `url`, check the status (showing the body when it differs) and return the JSON body."""
    response = await client.get(url)
    body = await response.json()
    assert response.status == status, body
    return body


async def get(client: TestClient[Any, Any], url: str, **kwargs: Any) -> tuple[int, CIMultiDictProxy[str], bytes]:
    response = await client.get(url, **kwargs)
    body = await response.read()
    return response.status, response.headers, body


async def settle(client: Client) -> None:
    """Wait for background cache saves and in-flight builds (behaviour, not timing)."""
    service = client.app[keys.DOWNLOADS]
    for _ in range(500):
        await service.idle()
        if not service.store.temp_files():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"temp files remain: {service.store.temp_files()}")


def check_zip(data: bytes | bytearray, tmp_path: Path) -> zipfile.ZipFile:
    """The archive as `zipfile` reads it (every CRC checked), after `unzip -t` also passed it."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    path = tmp_path / "check.zip"
    path.write_bytes(data)
    result = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return archive
