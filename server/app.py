"""The composition root: builds the aiohttp application from a Config.

Only this module wires things together: state under typed keys, the one middleware, each
capability's routes (`handlers.*.setup`), and the resources that live as long as the app
(background sweeps) in cleanup contexts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from . import keys
from .access import AccessPolicy
from .cache.freshness import FolderWatcher
from .cache.ttl import SWEEP_INTERVAL_S
from .catalog import Catalog
from .cluster import EventRelay, RedisLink
from .config import MAX_BODY_BYTES, Config
from .events import Event, EventBus
from .handlers import catalog as catalog_handlers
from .handlers import downloads, manage, media, ops, pages, thumbs
from .handlers import scan as scan_handlers
from .library import Library
from .metrics import Metrics
from .middleware import make_error_middleware
from .trash import Trash

log = logging.getLogger("archive_catalog")


async def _background(app: web.Application) -> AsyncIterator[None]:
    """The folder watcher and the cache sweeper, cancelled and awaited at shutdown."""
    catalog, watcher = app[keys.CATALOG], app[keys.WATCHER]
    trash = app[keys.TRASH]
    recovered = await asyncio.to_thread(trash.recover)
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
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _invalidate_on_change(catalog: Catalog) -> Callable[[Event], None]:
    def on_event(event: Event) -> None:
        if event.get("type") == "library.changed":
            catalog.invalidate(event["site"], event.get("model"))

    return on_event


async def _cluster(app: web.Application) -> AsyncIterator[None]:
    """With --redis-url: the Redis link, its monitor, and the cluster-wide event relay."""
    link = RedisLink(app[keys.CONFIG].redis_url or "", app[keys.INSTANCE_ID])
    app[keys.REDIS_LINK] = link
    await link.ping()
    relay = EventRelay(link, app[keys.EVENTS])
    tasks = [asyncio.create_task(link.monitor()), asyncio.create_task(relay.listen())]

    async def redis_health() -> dict[str, str]:
        return {"redis": link.state}

    app[keys.HEALTH_CHECKS].append(redis_health)
    app[keys.METRICS].gauge_from(
        "redis_up", "1 while Redis answers, 0 while it is down", (), lambda: [({}, float(link.up))]
    )
    yield
    relay.close()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await link.close()


def _register_metrics(metrics: Metrics, catalog: Catalog) -> None:
    def cache_samples(field: str) -> Callable[[], list[tuple[dict[str, str], float]]]:
        return lambda: [({"cache": c.name}, float(c.stats()[field])) for c in catalog.caches]

    metrics.gauge_from("cache_entries", "Entries in each memory cache", ("cache",), cache_samples("size"))
    metrics.counter_from("cache_hits", "Cache lookups served from the cache", ("cache",), cache_samples("hits"))
    metrics.counter_from("cache_misses", "Cache lookups that had to compute", ("cache",), cache_samples("misses"))


def create_app(config: Config) -> web.Application:
    if config.models_dir is None:
        raise ValueError("create_app needs a models_dir (the demo library is made before)")
    access = AccessPolicy(config.auth_token, config.public_url)
    metrics = Metrics()
    middleware = make_error_middleware(access.check, metrics.requests.observe)
    app = web.Application(middlewares=[middleware], client_max_size=MAX_BODY_BYTES)
    library = Library(config.models_dir)
    watcher = FolderWatcher(library.root, config.watch_interval_s)
    catalog = Catalog(library, watcher)
    events = EventBus()
    events.subscribe(_invalidate_on_change(catalog))
    app[keys.CONFIG] = config
    app[keys.INSTANCE_ID] = secrets.token_hex(6)
    app[keys.ACCESS] = access
    app[keys.LIBRARY] = library
    app[keys.WATCHER] = watcher
    app[keys.CATALOG] = catalog
    app[keys.TRASH] = Trash(library)
    app[keys.EVENTS] = events
    app[keys.STATS_PROVIDERS] = []
    app[keys.CLEARERS] = []
    app[keys.HEALTH_CHECKS] = []
    app[keys.METRICS] = metrics
    _register_metrics(metrics, catalog)
    catalog_handlers.setup(app)
    media.setup(app)
    manage.setup(app)
    ops.setup(app)
    downloads.setup(app)
    pages.setup(app)
    thumbs.setup(app)
    scan_handlers.setup(app)
    app.cleanup_ctx.append(_background)
    if config.redis_url:
        app.cleanup_ctx.append(_cluster)
    app.cleanup_ctx.append(downloads.downloads_context)
    app.cleanup_ctx.append(thumbs.thumbnail_context)
    app.cleanup_ctx.append(scan_handlers.scan_context)
    return app
