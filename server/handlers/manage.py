"""Deletes and the trash: move a model or a file to the trash, list, restore, empty.

Every change publishes `library.changed`, which drops the affected cache entries (on every
instance, once events are relayed) and reaches WebSocket clients.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from server import keys
from server.infra.events import LibraryChanged
from server.trash import TrashItem
from server.web.params import Query
from server.web.responses import send_json


def _announce(request: web.Request, item: TrashItem) -> None:
    request.app[keys.EVENTS].publish(LibraryChanged(site=item.site, model=item.model))


async def delete_model(request: web.Request) -> web.Response:
    query = Query(request.rel_url.raw_query_string)
    query.reject_unknown(("site", "model"))
    site, model = query.required("site"), query.required("model")
    item = await asyncio.to_thread(request.app[keys.TRASH].delete_model, site, model)
    _announce(request, item)
    return send_json(request, {"status": "deleted", "trash_id": item.id, "item": item.to_json()})


async def delete_file(request: web.Request) -> web.Response:
    query = Query(request.rel_url.raw_query_string)
    query.reject_unknown(("site", "model", "path"))
    site, model, name = query.required("site"), query.required("model"), query.required("path")
    item = await asyncio.to_thread(request.app[keys.TRASH].delete_file, site, model, name)
    _announce(request, item)
    return send_json(request, {"status": "deleted", "trash_id": item.id, "item": item.to_json()})


async def list_trash(request: web.Request) -> web.Response:
    Query(request.rel_url.raw_query_string).reject_unknown(())
    items = await asyncio.to_thread(request.app[keys.TRASH].items)
    return send_json(request, {"items": [item.to_json() for item in items], "bytes": sum(i.size for i in items)})


async def restore(request: web.Request) -> web.Response:
    query = Query(request.rel_url.raw_query_string)
    query.reject_unknown(("id",))
    item = await asyncio.to_thread(request.app[keys.TRASH].restore, query.required("id", max_length=64))
    _announce(request, item)
    return send_json(request, {"status": "restored", "id": item.id, "item": item.to_json()})


async def empty_trash(request: web.Request) -> web.Response:
    Query(request.rel_url.raw_query_string).reject_unknown(())
    freed = await asyncio.to_thread(request.app[keys.TRASH].empty)
    return send_json(request, {"status": "emptied", "freed": freed})
