"""An outside HTTP linter (httplint, REDbot's message checks) reads our responses and finds nothing wrong."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from httplint import HttpResponseLinter
from httplint.note import levels

from .conftest import ClientFactory

# The contract asks for `public` on media; the linter calls it "probably not necessary".
ACCEPTED_WARNINGS = {"Cache-Control: public is probably not necessary."}


async def _lint(client: TestClient[Any, Any], url: str, headers: dict[str, str] | None = None) -> list[str]:
    response = await client.get(url, headers=headers or {}, auto_decompress=False)
    body = await response.read()
    return lint(response.status, response.reason or "", list(response.raw_headers), body)


def lint(status: int, reason: str, raw_headers: list[tuple[bytes, bytes]], body: bytes) -> list[str]:
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


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/api/sites", {}),
        ("/api/models?site=alpha", {"Accept-Encoding": "gzip"}),
        ("/api/model?site=alpha&model=ana", {"Accept-Encoding": "gzip"}),
        ("/api/model?site=alpha&model=nope", {}),
        ("/api/models?site=%ff", {}),
        ("/api/cache_stats", {}),
        ("/api/trash", {}),
        ("/api/openapi.json", {"Accept-Encoding": "gzip"}),
        ("/healthz", {}),
        ("/metrics", {}),
        ("/media/alpha/ana/img1.jpg", {"Accept-Encoding": "gzip"}),
        ("/media/alpha/ana/img1.jpg", {"Range": "bytes=0-99"}),
        ("/media/alpha/ana/img1.jpg", {"Range": "bytes=999999-"}),
        ("/media/alpha/ana/missing.jpg", {}),
        ("/no/such/route", {}),
    ],
)
async def test_responses_pass_the_linter(client: TestClient[Any, Any], url: str, headers: dict[str, str]) -> None:
    assert await _lint(client, url, headers) == []


async def test_not_modified_responses_pass_the_linter(client: TestClient[Any, Any]) -> None:
    for url in ("/api/models?site=alpha", "/media/alpha/ana/img1.jpg"):
        etag = (await client.get(url)).headers["ETag"]
        assert await _lint(client, url, {"If-None-Match": etag}) == []


async def test_media_behind_a_token_is_private(make_client: ClientFactory) -> None:
    client = await make_client(auth_token="correct-horse-battery")
    response = await client.get("/media/alpha/ana/img1.jpg", headers={"Authorization": "Bearer correct-horse-battery"})
    assert response.headers["Cache-Control"] == "private, max-age=86400"


def test_the_linter_does_report_a_broken_message() -> None:
    headers = [(b"Content-Type", b"application/json"), (b"Content-Length", b"99"), (b"Cache-Control", b"max-age=x")]
    assert lint(200, "OK", headers, b"{}") != []
