"""The first checks: the sites listing, and /healthz with and without the library folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from server import keys


async def test_sites_lists_both_sites(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/sites")
    assert response.status == 200
    body = await response.json()
    assert [s["name"] for s in body["sites"]] == ["alpha", "beta"]
    alpha = body["sites"][0]
    assert alpha["models"] == 3
    assert alpha["files"] == 8


async def test_healthz_is_ok_with_the_library(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok" and body["library"] == "ok" and body["redis"] == "off"


async def test_healthz_is_503_while_the_library_is_missing(client: TestClient[Any, Any], library_root: Path) -> None:
    unmounted = library_root.rename(library_root.with_name("unmounted"))
    await client.app[keys.WATCHER].sweep()  # what the watcher's next sweep sees
    assert (await client.get("/api/sites")).status == 503
    for headers in ({}, {"If-None-Match": "*"}):  # never a 304: a monitor must see the 503
        response = await client.get("/healthz", headers=headers)
        assert response.status == 503
        body = await response.json()
        assert body["status"] == "degraded" and body["library"] == "missing" and body["redis"] == "off"
        assert body["instance"]
    unmounted.rename(library_root)
    await client.app[keys.WATCHER].sweep()
    response = await client.get("/healthz")
    assert response.status == 200 and (await response.json())["library"] == "ok"
