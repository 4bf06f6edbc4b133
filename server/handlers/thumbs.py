"""Thumbnails: `GET /thumb/{site}/{model…}/{file}?w=` served from the disk cache.

The width is checked before any lookup (400 outside 64..1024); the path goes through the
Library resolver (traversal, hidden and non-media names refused); the file is served by
`send_file`, so ETag, 304 and Range work as for media. The process pool and the cache live in
a cleanup context; the cache reports to `/api/cache_stats` and is emptied by `/api/clear_cache`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from .. import keys
from ..cache.thumbnails import (
    CONTENT_TYPE,
    DEFAULT_WIDTH,
    MAX_WIDTH,
    MIN_WIDTH,
    ThumbnailCache,
    default_workers,
    find_ffmpeg,
    new_pool,
    warm_pool,
)
from ..errors import NotFound
from ..library import media_kind
from ..params import Query
from .media import media_cache_control
from .responses import send_file

log = logging.getLogger("archive_catalog")


async def thumbnail(request: web.Request) -> web.StreamResponse:
    query = Query(request.rel_url.raw_query_string)
    query.reject_unknown(("w", "v"))
    width = query.integer("w", default=DEFAULT_WIDTH, low=MIN_WIDTH, high=MAX_WIDTH) or DEFAULT_WIDTH
    query.text("v", max_length=64)  # a client's cache-buster (the source's mtime): validated, not used
    relative = request.match_info["path"]
    media = await asyncio.to_thread(request.app[keys.LIBRARY].media_path, relative)
    cache = request.app[keys.THUMBNAILS]
    video = media_kind(media.name) == "video"
    for attempt in (1, 2):
        path = await cache.get(media, video, width)
        try:
            # the same caching as the media it shows (private behind a token)
            return await send_file(request, str(path), CONTENT_TYPE, media_cache_control(request.app))
        except NotFound:
            if attempt == 2:
                raise
            cache.drop(path)  # cleared or evicted between lookup and open: make it again
    raise AssertionError("unreachable")


async def thumbnail_context(app: web.Application) -> AsyncIterator[None]:
    """The worker pool (forkserver) for the app's lifetime; workers start in the background."""
    cache = app[keys.THUMBNAILS]
    workers = default_workers()
    cache.pool_factory = functools.partial(new_pool, workers)
    cache.executor = cache.pool_factory()
    await asyncio.to_thread(cache.load_index)
    warming = asyncio.create_task(warm_pool(cache.executor, workers))
    try:
        yield
    finally:
        warming.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await warming
        pool, cache.executor, cache.pool_factory = cache.executor, None, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


def setup(app: web.Application) -> None:
    """The route, the cache (stats and clearing hooks); `thumbnail_context` runs its pool."""
    cache = ThumbnailCache(
        app[keys.CONFIG].cache_dir / "thumbnails", max_concurrent=default_workers() * 2, ffmpeg=find_ffmpeg()
    )
    app[keys.THUMBNAILS] = cache

    async def stats() -> dict[str, object]:
        return {"thumbnail_cache": cache.stats()}

    async def clear() -> dict[str, str]:
        await cache.clear()
        return {"thumbnail_cache": "cleared"}

    app[keys.STATS_PROVIDERS].append(stats)
    app[keys.CLEARERS].append(clear)
    app.router.add_get("/thumb/{path:.+}", thumbnail)
