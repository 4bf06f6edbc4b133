"""The OpenAPI document and the router agree: every route documented, every documented route real."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from server.web.openapi import load_document


def _registered(client: TestClient[Any, Any]) -> set[tuple[str, str]]:
    routes = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if route.method in ("HEAD", "OPTIONS", "*") or not path:  # "*": the unmatched fallback
            continue
        path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)
        routes.add((route.method.lower(), path))
    return routes


def _documented() -> set[tuple[str, str]]:
    document = load_document()
    return {(method, path) for path, operations in document["paths"].items() for method in operations}


async def test_every_route_is_documented_and_every_documented_route_exists(client: TestClient[Any, Any]) -> None:
    registered, documented = _registered(client), _documented()
    assert registered - documented == set(), "routes missing from the OpenAPI document"
    assert documented - registered == set(), "documented routes the server does not have"


async def test_document_is_served_as_openapi_3_1(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    body = await response.json()
    assert body["openapi"].startswith("3.1")
    for path, operations in body["paths"].items():
        for method, operation in operations.items():
            assert operation.get("responses"), f"{method.upper()} {path} documents no response"
