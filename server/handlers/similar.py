"""Similar-image routes: GET /api/similar, POST /api/similar/delete, POST /api/similar/resolve.

Thin: parse and check the input (the JSON body readers are the duplicates' own, in
server.handlers.scan), call the scan service's `similar` (server.similar.service), answer JSON.
The scan itself is `POST /api/scan?kind=similar` (server.handlers.scan).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from server import keys
from server.errors import BadRequest
from server.handlers.scan import delete_body, resolve_body
from server.infra.representation import render
from server.similar import index, phash
from server.similar.service import RULES
from server.web.params import Query
from server.web.responses import send_json, send_rendered

MAX_GROUPS_PAGE = 10_000
MAX_OFFSET = 10_000_000


async def similar(request: web.Request) -> web.Response:
    query = Query(request.rel_url.raw_query_string)
    query.reject_unknown(("threshold", "offset", "limit"))
    threshold = query.integer("threshold", default=phash.DEFAULT_THRESHOLD, low=0, high=index.MAX_THRESHOLD)
    offset = query.integer("offset", default=0, low=0, high=MAX_OFFSET)
    limit = query.integer("limit", default=None, low=1, high=MAX_GROUPS_PAGE)
    assert threshold is not None and offset is not None
    service = request.app[keys.SCAN].similar
    await asyncio.to_thread(service.refresh)
    body = await service.listing(threshold, offset, limit)
    return send_rendered(request, await asyncio.to_thread(render, body), "no-store")  # big: encoded off the loop


def _threshold(body: dict[str, Any]) -> int:
    """The body's `threshold`: a whole number (JSON's 12.0 is one too) in range."""
    threshold = body.get("threshold", phash.DEFAULT_THRESHOLD)
    whole = type(threshold) is int or (type(threshold) is float and threshold.is_integer())
    if not whole or not 0 <= threshold <= index.MAX_THRESHOLD:
        raise BadRequest(f"'threshold' must be a whole number between 0 and {index.MAX_THRESHOLD}.")
    return int(threshold)


async def delete_similar(request: web.Request) -> web.Response:
    body, keep, delete = await delete_body(request, frozenset({"threshold"}))
    threshold = _threshold(body)
    service = request.app[keys.SCAN].similar
    await asyncio.to_thread(service.refresh)
    result = await service.delete(keep, delete, threshold)
    return send_json(request, result)


async def resolve_similar(request: web.Request) -> web.Response:
    body, groups, dry_run = await resolve_body(request, RULES, frozenset({"site", "threshold"}))
    threshold = _threshold(body)
    service = request.app[keys.SCAN].similar
    await asyncio.to_thread(service.refresh)
    site = body.get("site") if body["rule"] == "in_site" else None
    result = await service.resolve(body["rule"], groups, site=site, threshold=threshold, dry_run=dry_run)
    return send_json(request, result)
