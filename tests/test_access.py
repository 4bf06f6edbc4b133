"""--auth-token: bearer header or the login cookie; /healthz stays open."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient

from .conftest import ClientFactory

TOKEN = "correct-horse-battery"


@pytest.fixture
async def guarded(make_client: ClientFactory) -> TestClient[Any, Any]:
    return await make_client(auth_token=TOKEN)


@pytest.mark.parametrize("url", ["/api/sites", "/api/models?site=alpha", "/media/alpha/ana/img1.jpg", "/api/trash"])
async def test_routes_need_the_token(guarded: TestClient[Any, Any], url: str) -> None:
    response = await guarded.get(url)
    assert response.status == 401
    body = await response.json()
    assert body["error"] == "unauthorized" and "token" in body["message"]
    assert TOKEN not in await response.text()
    wrong = await guarded.get(url, headers={"Authorization": "Bearer wrong-token-value"})
    assert wrong.status == 401
    right = await guarded.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status == 200


async def test_healthz_stays_open(guarded: TestClient[Any, Any]) -> None:
    response = await guarded.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert (body["status"], body["redis"]) == ("ok", "off")


async def test_login_sets_an_httponly_strict_cookie(guarded: TestClient[Any, Any]) -> None:
    bad = await guarded.get("/login?token=nope-nope-nope", allow_redirects=False)
    assert bad.status == 401
    response = await guarded.get(f"/login?token={TOKEN}", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    async with ClientSession(cookies={"catalog_session": TOKEN}) as session:
        ok = await session.get(guarded.make_url("/api/sites"))
        assert ok.status == 200


async def test_no_token_configured_means_open(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/api/sites")).status == 200
