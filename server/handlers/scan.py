"""Duplicate scan routes and the live event socket.

POST /api/scan, POST /api/scan/cancel, GET /api/scan_progress, GET /api/duplicates,
POST /api/duplicates/delete and GET /ws. `setup` registers the routes, the hash-cache stats
and clearer, the hub's event-bus subscription and the GOING_AWAY close on shutdown;
`scan_context` (a cleanup context) runs the worker pool for the app's lifetime.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from aiohttp import web

from server import keys
from server.errors import BadRequest
from server.web.params import Query
from server.web.responses import send_json

MAX_DELETE_PATHS = 500


async def start_scan(request: web.Request) -> web.Response:
    Query(request.rel_url.raw_query_string).reject_unknown(())
    scan_id = await request.app[keys.SCAN].start()
    response = send_json(request, {"status": "started", "scan_id": scan_id})
    response.set_status(202)
    return response


async def cancel_scan(request: web.Request) -> web.Response:
    Query(request.rel_url.raw_query_string).reject_unknown(())
    request.app[keys.SCAN].cancel()
    return send_json(request, {"status": "cancelling"})


async def scan_progress(request: web.Request) -> web.Response:
    Query(request.rel_url.raw_query_string).reject_unknown(())
    return send_json(request, request.app[keys.SCAN].snapshot())


async def duplicates(request: web.Request) -> web.Response:
    Query(request.rel_url.raw_query_string).reject_unknown(())
    service = request.app[keys.SCAN]
    await asyncio.to_thread(service.refresh_results)
    return send_json(request, service.duplicates())


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise BadRequest("A JSON object in the body names a key twice.", code="invalid_json")
    return found


async def _json_body(request: web.Request) -> Any:
    """The body as JSON; a key given twice is refused (which one would count is ambiguous)."""
    raw = await request.read()
    try:
        orjson.loads(raw)  # strict UTF-8 and syntax first
        return json.loads(raw, object_pairs_hook=_unique_keys)
    except (orjson.JSONDecodeError, RecursionError):
        raise BadRequest("The body must be JSON.", code="invalid_json") from None


async def delete_duplicates(request: web.Request) -> web.Response:
    Query(request.rel_url.raw_query_string).reject_unknown(())
    body = await _json_body(request)
    if not isinstance(body, dict) or set(body) - {"keep", "delete"}:
        raise BadRequest('The body must be {"keep": path, "delete": [path, ...]}.')
    keep, delete = body.get("keep"), body.get("delete")
    if not isinstance(keep, str) or not keep:
        raise BadRequest("'keep' must be a path relative to the library.")
    if not isinstance(delete, list) or not all(isinstance(p, str) and p for p in delete):
        raise BadRequest("'delete' must be a list of paths relative to the library.")
    if len(delete) > MAX_DELETE_PATHS:
        raise BadRequest(f"'delete' may list at most {MAX_DELETE_PATHS} paths.")
    result = await request.app[keys.SCAN].delete_duplicates(keep, delete)
    return send_json(request, result)


async def websocket(request: web.Request) -> web.StreamResponse:
    """The live event socket; a plain GET (no WebSocket handshake) gets the `hello` snapshot."""
    Query(request.rel_url.raw_query_string).reject_unknown(())
    hub = request.app[keys.HUB]
    if not hub.is_handshake(request):
        return send_json(request, hub.hello())
    return await hub.handle(request)
