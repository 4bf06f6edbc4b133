from typing import Any

from aiohttp.test_utils import TestClient


async def test_sites_lists_both_sites(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/sites")
    assert response.status == 200
    body = await response.json()
    assert [s["name"] for s in body["sites"]] == ["alpha", "beta"]
    alpha = body["sites"][0]
    assert alpha["models"] == 3
    assert alpha["files"] == 8
