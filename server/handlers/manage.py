"""Deletes and the trash: move a model or a file to the trash, list, picture, restore, delete, empty.

Every change of the library publishes `library.changed`, which drops the affected cache entries
(on every instance, once events are relayed) and reaches WebSocket clients; deleting trash items
for good changes no listing and publishes nothing. Restore and delete take one `id` or several
(repeated, at most the query's parameter limit); several are answered per item.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from server import keys
from server.cache.thumbnails import DEFAULT_WIDTH, MAX_WIDTH, MIN_WIDTH
from server.errors import BadRequest
from server.handlers.thumbs import send_thumbnail
from server.infra.events import LibraryChanged
from server.trash import TrashItem
from server.web.params import Query
from server.web.responses import send_json

ID_MAX_LENGTH = 64


def _announce(request: web.Request, *items: TrashItem) -> None:
    events = request.app[keys.EVENTS]
    for site, model in dict.fromkeys((item.site, item.model) for item in items):
        events.publish(LibraryChanged(site=site, model=model))


def _ids(query: Query) -> list[str]:
    ids = query.all("id")
    if not ids:
        query.required("id")  # the one "is required" error
    for item_id in ids:
        if not item_id or len(item_id) > ID_MAX_LENGTH:
            raise BadRequest("Query parameter 'id' must be a trash id like '0123456789ab-89abcdef'.")
    return ids


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


async def trash_thumbnail(request: web.Request) -> web.StreamResponse:
    """The thumbnail of a trashed file, or of a trashed model's first image, by trash id."""
    query = Query(request.rel_url.raw_query_string)
    query.reject_unknown(("id", "w"))
    item_id = query.required("id", max_length=ID_MAX_LENGTH)
    width = query.integer("w", default=DEFAULT_WIDTH, low=MIN_WIDTH, high=MAX_WIDTH) or DEFAULT_WIDTH
    source, video = await asyncio.to_thread(request.app[keys.TRASH].preview_source, item_id)
    return await send_thumbnail(request, source, video, width)


async def restore(request: web.Request) -> web.Response:
    query = Query(request.rel_url.raw_query_string)
    query.reject_unknown(("id",))
    ids = _ids(query)
    trash = request.app[keys.TRASH]
    if len(ids) == 1:
        item = await asyncio.to_thread(trash.restore, ids[0])
        _announce(request, item)
        return send_json(request, {"status": "restored", "id": item.id, "item": item.to_json()})
    restored, refused = await asyncio.to_thread(trash.restore_many, ids)
    _announce(request, *restored)
    return send_json(
        request,
        {
            "restored": [item.to_json() for item in restored],
            "conflicts": [{"id": item_id, "message": message} for item_id, message in refused],
        },
    )


async def delete_for_good(request: web.Request) -> web.Response:
    query = Query(request.rel_url.raw_query_string)
    query.reject_unknown(("id",))
    deleted, refused, freed = await asyncio.to_thread(request.app[keys.TRASH].delete_many, _ids(query))
    return send_json(
        request,
        {
            "deleted": [item.to_json() for item in deleted],
            "freed": freed,
            "failed": [{"id": item_id, "message": message} for item_id, message in refused],
        },
    )


async def empty_trash(request: web.Request) -> web.Response:
    Query(request.rel_url.raw_query_string).reject_unknown(())
    freed = await asyncio.to_thread(request.app[keys.TRASH].empty)
    return send_json(request, {"status": "emptied", "freed": freed})
