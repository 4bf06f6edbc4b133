"""Everything that lives as long as the app, opened at start and closed at shutdown, in order.

`install(app)` appends the cleanup contexts in the order they must open (and close in reverse):

1. `library_upkeep`  trash recovery, the folder watcher and the cache sweeper
2. `cluster`         with --redis-url: the Redis link, its monitor and the event relay
3. `download_cache`  the download index (SQLite, or Redis through the link) and leftover files
4. `thumbnail_pool`  the thumbnail workers (warmed in the background) and the cache's index
5. `scan_pool`       the hash workers, the hash cache and the last results
and, on shutdown, every WebSocket is closed with GOING_AWAY before the contexts unwind.
The objects themselves are built in `server.app`; this module only opens and closes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server import keys
from server.cache.ttl import SWEEP_INTERVAL_S

log = logging.getLogger("archive_catalog")

STALE_TEMP_AGE_S = 3600.0  # with a shared (Redis) cache, other instances' temp files are younger


def install(app: web.Application) -> None:
    app.cleanup_ctx.append(library_upkeep)
    if keys.REDIS_LINK in app:
        app.cleanup_ctx.append(cluster)
    app.cleanup_ctx.append(download_cache)
    app.cleanup_ctx.append(thumbnail_pool)
    app.cleanup_ctx.append(scan_pool)
    app.on_shutdown.append(close_sockets)


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def library_upkeep(app: web.Application) -> AsyncIterator[None]:
    """Trash recovery at start; the folder watcher and the cache sweeper while the app runs."""
    catalog, watcher = app[keys.CATALOG], app[keys.WATCHER]
    recovered = await asyncio.to_thread(app[keys.TRASH].recover)
    if recovered:
        log.info("trash: removed %d item(s) left by an interrupted move", recovered)

    async def sweep_caches() -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            dropped = catalog.sweep()
            if dropped:
                log.info("cache sweep dropped %d expired entries", dropped)

    tasks = [asyncio.create_task(watcher.run()), asyncio.create_task(sweep_caches())]
    yield
    await _stop(tasks)


async def cluster(app: web.Application) -> AsyncIterator[None]:
    """The Redis link (first ping, then a monitor) and the cluster-wide event relay."""
    link, relay = app[keys.REDIS_LINK], app[keys.EVENT_RELAY]
    await link.ping()
    tasks = [asyncio.create_task(task) for task in (link.monitor(), relay.listen(), relay.send())]
    yield
    relay.close()
    await _stop(tasks)
    await link.close()


async def download_cache(app: web.Application) -> AsyncIterator[None]:
    """The download index and store (after the cluster context: the Redis index needs the link)."""
    service = app[keys.DOWNLOADS]
    store = service.store
    min_age = STALE_TEMP_AGE_S if store.index.name == "redis" else 0.0
    removed = await store.open(min_age)
    if removed:
        log.info("Download cache: removed %d leftover file(s)", removed)
    try:
        yield
    finally:
        await service.close()
        await store.close()


async def thumbnail_pool(app: web.Application) -> AsyncIterator[None]:
    """The thumbnail workers, started at once and warmed in the background."""
    thumbnails = app[keys.THUMBNAILS]
    warming = await thumbnails.pool.start(wait_warm=False)
    await asyncio.to_thread(thumbnails.load_index)
    try:
        yield
    finally:
        warming.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await warming
        await thumbnails.pool.close()


async def scan_pool(app: web.Application) -> AsyncIterator[None]:
    """The hash workers (warmed before the first scan), the hash cache and the last results."""
    service = app[keys.SCAN]
    await service.open()
    yield
    await service.close()


async def close_sockets(app: web.Application) -> None:
    await app[keys.HUB].close_all()
