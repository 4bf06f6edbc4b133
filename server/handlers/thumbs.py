"""Thumbnails: `GET /thumb/{site}/{model…}/{file}?w=` served from the disk cache.

The width is checked before any lookup (400 outside 64..1024); the path goes through the
Library resolver (traversal, hidden and non-media names refused); the file is served by
`send_file`, so ETag, 304 and Range work as for media. The process pool and the cache live in
a cleanup context; the cache reports to `/api/cache_stats` and is emptied by `/api/clear_cache`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from server import keys
from server.cache.thumbnails import (
    CONTENT_TYPE,
    DEFAULT_WIDTH,
    MAX_WIDTH,
    MIN_WIDTH,
)
from server.errors import NotFound
from server.handlers.media import media_cache_control
from server.library import media_kind
from server.web.files import send_file
from server.web.params import Query

log = logging.getLogger("archive_catalog")


async def thumbnail(request: web.Request) -> web.StreamResponse:
    query = Query(request.rel_url.raw_query_string)
    query.reject_unknown(("w", "v"))
    width = query.integer("w", default=DEFAULT_WIDTH, low=MIN_WIDTH, high=MAX_WIDTH) or DEFAULT_WIDTH
    query.text("v", max_length=64)  # a client's cache-buster (the source's mtime): validated, not used
    relative = request.match_info["path"]
    media = await asyncio.to_thread(request.app[keys.LIBRARY].media_path, relative)
    return await send_thumbnail(request, media, media_kind(media.name) == "video", width)


async def send_thumbnail(request: web.Request, source: Path, video: bool, width: int) -> web.StreamResponse:
    """The thumbnail of `source` from the disk cache, with the caching of the media it shows
    (private behind a token); made again if it was cleared or evicted before it could be opened."""
    cache = request.app[keys.THUMBNAILS]
    for attempt in (1, 2):
        path = await cache.get(source, video, width)
        try:
            return await send_file(request, str(path), CONTENT_TYPE, media_cache_control(request.app))
        except NotFound:
            if attempt == 2:
                raise
            cache.drop(path)
    raise AssertionError("unreachable")
