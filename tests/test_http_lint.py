"""An outside HTTP linter (httplint, REDbot's message checks) reads our responses and finds nothing wrong."""

from __future__ import annotations

import pytest

from .conftest import Client, ClientFactory
from .http_support import lint, lint_response


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
async def test_responses_pass_the_linter(client: Client, url: str, headers: dict[str, str]) -> None:
    assert await lint_response(client, url, headers) == []


async def test_not_modified_responses_pass_the_linter(client: Client) -> None:
    for url in ("/api/models?site=alpha", "/media/alpha/ana/img1.jpg"):
        etag = (await client.get(url)).headers["ETag"]
        assert await lint_response(client, url, {"If-None-Match": etag}) == []


async def test_media_behind_a_token_is_private(make_client: ClientFactory) -> None:
    client = await make_client(auth_token="correct-horse-battery")
    response = await client.get("/media/alpha/ana/img1.jpg", headers={"Authorization": "Bearer correct-horse-battery"})
    assert response.headers["Cache-Control"] == "private, max-age=86400"


def test_the_linter_does_report_a_broken_message() -> None:
    headers = [(b"Content-Type", b"application/json"), (b"Content-Length", b"99"), (b"Cache-Control", b"max-age=x")]
    assert lint(200, "OK", headers, b"{}") != []
