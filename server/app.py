"""The composition root: every object the app uses is built here, and every URL is listed here.

`create_app(config)` builds the services from the config (nothing is patched after it is
built), says who reacts to which event (`server.infra.events` lists the kinds), registers
what `/api/cache_stats`, `/api/clear_cache`, `/healthz` and `/metrics` report, and holds the
one route table. `server.lifecycle` opens and closes what lives as long as the app, in order.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from server import keys, lifecycle
from server.cache.downloads import DownloadIndex, DownloadStore, LocalIndex, RedisIndex
from server.cache.freshness import FolderWatcher
from server.cache.thumbnails import ThumbnailCache, find_ffmpeg
from server.cache.thumbnails import warm_up as warm_thumbnail_worker
from server.catalog import Catalog
from server.config import MAX_BODY_BYTES, Config
from server.downloads.service import DownloadMetrics, DownloadService, auto_threshold_mb
from server.handlers import catalog, downloads, manage, media, ops, pages, scan, similar, thumbs
from server.infra.cluster import ClusterLock, EventRelay, RedisLink
from server.infra.events import BROWSER_EVENTS, EventBus, LibraryChanged, ScanEvent
from server.infra.folder_events import FolderEvents
from server.infra.metrics import Metrics, Source
from server.infra.pools import WorkerPool, default_workers
from server.infra.representation import render
from server.library import Library
from server.scan import hashing
from server.scan.service import ScanService
from server.trash import Trash
from server.web.access import AccessPolicy
from server.web.assets import TEMPLATES, load_assets
from server.web.hub import Hub
from server.web.middleware import UNMATCHED, Guard, make_guard, unmatched
from server.web.openapi import load_document

log = logging.getLogger("archive_catalog")

REDIS_DOWNLOADS_PREFIX = "archive-catalog:downloads"
SCAN_LOCK_TTL_S = 15.0


def add_routes(router: web.UrlDispatcher, guard: Guard) -> None:
    """Every URL the server answers (the contract is `docs`/OpenAPI; this is where each lands),
    each handler behind the one request guard; paths no route has end at `unmatched` (404/405)."""
    router.add_get("/", guard(pages.index))
    router.add_get("/static/{path:.+}", guard(pages.static))
    router.add_get("/login", guard(ops.login))
    router.add_get("/healthz", guard(ops.healthz))
    router.add_get("/metrics", guard(ops.metrics))
    router.add_get("/api/openapi.json", guard(ops.openapi))
    # catalog
    router.add_get("/api/sites", guard(catalog.sites))
    router.add_get("/api/models", guard(catalog.models))
    router.add_get("/api/model", guard(catalog.model))
    router.add_get("/api/search", guard(catalog.search))
    router.add_get("/api/cache_stats", guard(catalog.cache_stats))
    router.add_post("/api/clear_cache", guard(catalog.clear_cache))
    # media
    router.add_get("/media/{path:.+}", guard(media.media))
    router.add_get("/thumb/{path:.+}", guard(thumbs.thumbnail))
    # deletes and the trash
    router.add_delete("/api/model", guard(manage.delete_model))
    router.add_delete("/api/file", guard(manage.delete_file))
    router.add_get("/api/trash", guard(manage.list_trash))
    router.add_get("/api/trash/thumb", guard(manage.trash_thumbnail))
    router.add_post("/api/trash/restore", guard(manage.restore))
    router.add_post("/api/trash/delete", guard(manage.delete_for_good))
    router.add_delete("/api/trash", guard(manage.empty_trash))
    # downloads
    router.add_get("/api/download", guard(downloads.download))
    # the duplicate scan and live events
    router.add_post("/api/scan", guard(scan.start_scan))
    router.add_post("/api/scan/cancel", guard(scan.cancel_scan))
    router.add_get("/api/scan_progress", guard(scan.scan_progress))
    router.add_get("/api/duplicates", guard(scan.duplicates))
    router.add_post("/api/duplicates/delete", guard(scan.delete_duplicates))
    router.add_post("/api/duplicates/resolve", guard(scan.resolve_duplicates))
    # similar images (their scan is POST /api/scan?kind=similar)
    router.add_get("/api/similar", guard(similar.similar))
    router.add_post("/api/similar/delete", guard(similar.delete_similar))
    router.add_post("/api/similar/resolve", guard(similar.resolve_similar))
    router.add_get("/ws", guard(scan.websocket))
    router.add_route("*", "/{path:.*}", guard(unmatched, UNMATCHED))  # last


def create_app(config: Config) -> web.Application:
    if config.models_dir is None:
        raise ValueError("create_app needs a models_dir (the demo library is made before)")
    instance_id = secrets.token_hex(6)
    access = AccessPolicy(config.auth_token, config.public_url)
    metrics = Metrics()
    app = web.Application(client_max_size=MAX_BODY_BYTES)

    # the library and its listings
    library = Library(config.models_dir)
    folder_events = FolderEvents()  # inotify stamps, shared by the watcher, the download selection and rescans
    watcher = FolderWatcher(library.root, config.watch_interval_s, folder_events)
    catalog_service = Catalog(library, watcher)
    trash = Trash(library)
    events = EventBus()

    # several instances: one Redis link, the event relay, the cluster scan lock
    link = RedisLink(config.redis_url, instance_id) if config.redis_url else None
    relay = EventRelay(link, events) if link is not None else None

    # downloads
    index: DownloadIndex = (
        RedisIndex(link, REDIS_DOWNLOADS_PREFIX)
        if link is not None
        else LocalIndex(config.cache_dir / "downloads" / "index.sqlite3")
    )
    store = DownloadStore(Path(config.cache_dir) / "downloads", index, config.download_cache_max_bytes)
    max_builds = config.download_max_builds or 4 * (os.cpu_count() or 1)
    threshold_mb = auto_threshold_mb(max_builds) if config.threshold_mb is None else config.threshold_mb
    downloads_service = DownloadService(
        catalog_service, store, threshold_mb * 1_000_000, max_builds, config.download_queue_wait_s, folder_events
    )
    log.info("Download cache threshold: %dMB", threshold_mb)
    if config.threshold_mb is None:
        log.info("(auto: a quarter of the available memory over %d concurrent builds)", max_builds)

    # thumbnails: a worker pool of their own
    thumb_workers = default_workers(1, 4)
    thumbnail_pool = WorkerPool("thumbnails", thumb_workers, warm=warm_thumbnail_worker)
    thumbnails = ThumbnailCache(
        config.cache_dir / "thumbnails", thumbnail_pool, max_concurrent=thumb_workers * 2, ffmpeg=find_ffmpeg()
    )

    # the scans (duplicates, similar images): their worker pool, the cancel flag the workers
    # share, the cluster lock
    cancel_flag = multiprocessing.get_context("forkserver").Event()
    scan_pool = WorkerPool(
        "scan",
        default_workers(2, 8),
        initializer=hashing.init_worker,
        initargs=(cancel_flag,),
        preload=("server.scan.hashing", "server.similar.phash"),
    )
    library_id = ScanService.library_id_of(library)
    lock = ClusterLock(link, f"scan:{library_id}", ttl_s=SCAN_LOCK_TTL_S) if link is not None else None
    scan_service = ScanService(
        library, trash, config.cache_dir, events.publish, scan_pool, cancel_flag, lock=lock, folder_events=folder_events
    )
    hub = Hub(scan_service.snapshot)

    # who reacts to which event
    events.subscribe(lambda e: catalog_service.invalidate(e.site, e.model), LibraryChanged)
    events.subscribe(downloads_service.on_library_changed, LibraryChanged)
    events.subscribe(scan_service.on_remote_event, ScanEvent)
    events.subscribe(hub.on_event, *BROWSER_EVENTS)

    app[keys.CONFIG] = config
    app[keys.INSTANCE_ID] = instance_id
    app[keys.ACCESS] = access
    app[keys.METRICS] = metrics
    app[keys.LIBRARY] = library
    app[keys.WATCHER] = watcher
    app[keys.CATALOG] = catalog_service
    app[keys.TRASH] = trash
    app[keys.EVENTS] = events
    if link is not None and relay is not None:
        app[keys.REDIS_LINK] = link
        app[keys.EVENT_RELAY] = relay
    app[keys.DOWNLOADS] = downloads_service
    app[keys.THUMBNAILS] = thumbnails
    app[keys.SCAN] = scan_service
    app[keys.HUB] = hub
    app[keys.STATIC_ASSETS] = load_assets()
    app[keys.OPENAPI_DOCUMENT] = render(load_document())

    # what /api/cache_stats and /api/clear_cache report beyond the catalog's memory caches
    async def download_stats() -> dict[str, object]:
        return {"download_cache": await downloads_service.stats()}

    async def thumbnail_stats() -> dict[str, object]:
        return {"thumbnail_cache": thumbnails.stats()}

    async def clear_downloads() -> dict[str, str]:
        return {"download_cache": await downloads_service.clear()}

    async def clear_thumbnails() -> dict[str, str]:
        await thumbnails.clear()
        return {"thumbnail_cache": "cleared"}

    stats: list[keys.StatsProvider] = [download_stats, thumbnail_stats, scan_service.cache_stats]
    clearers: list[keys.Clearer] = [clear_downloads, clear_thumbnails, scan_service.clear_cache]
    app[keys.STATS_PROVIDERS] = stats
    app[keys.CLEARERS] = clearers

    # what /healthz reports beyond the library's state (which decides its status)
    async def redis_health() -> dict[str, str]:
        return {"redis": link.state if link is not None else "off"}

    health: list[keys.HealthCheck] = [redis_health]
    app[keys.HEALTH_CHECKS] = health

    # what /metrics reports beyond the request figures
    _register_metrics(metrics, catalog_service, watcher, scan_service, hub, link)
    app[keys.DOWNLOAD_METRICS] = DownloadMetrics.register(metrics, downloads_service)

    aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=jinja2.select_autoescape(("html",))
    )
    add_routes(app.router, make_guard(access.check, metrics.requests.observe))
    lifecycle.install(app)
    return app


def _register_metrics(
    metrics: Metrics,
    catalog_service: Catalog,
    watcher: FolderWatcher,
    scan_service: ScanService,
    hub: Hub,
    link: RedisLink | None,
) -> None:
    def cache_samples(field: str) -> Source:
        return lambda: [({"cache": c.name}, float(c.stats()[field])) for c in catalog_service.caches]

    metrics.gauge_from("cache_entries", "Entries in each memory cache", ("cache",), cache_samples("size"))
    metrics.counter_from("cache_hits", "Cache lookups served from the cache", ("cache",), cache_samples("hits"))
    metrics.counter_from("cache_misses", "Cache lookups that had to compute", ("cache",), cache_samples("misses"))
    metrics.counter_from("site_walks", "Site folders walked to (re)build a listing", (),
                         lambda: [({}, float(catalog_service.walks))])  # fmt: skip
    metrics.gauge_from("hash_cache_entries", "Files in the duplicate scan's hash cache", (),
                       lambda: [({}, float(len(scan_service.cache)))])  # fmt: skip
    metrics.gauge_from("perceptual_cache_entries", "Files in the similar-image scan's perceptual cache", (),
                       lambda: [({}, float(len(scan_service.perceptual_cache)))])  # fmt: skip
    metrics.counter_from("scans", "Scans (duplicates, similar images) ended on this instance, by outcome", ("outcome",),
                         lambda: [({"outcome": k}, float(v)) for k, v in scan_service.outcomes.items()])  # fmt: skip
    metrics.counter_from("scan_hashed_bytes", "Bytes read by the hash workers", (),
                         lambda: [({}, float(scan_service.hashed_bytes_total))])  # fmt: skip
    metrics.counter_from("scan_walk_parts", "Library parts a scan walked (whole or in part), or kept whole", ("how",),
                         lambda: [({"how": "walked"}, float(scan_service.counters.walked_parts)),
                                  ({"how": "kept"}, float(scan_service.counters.kept_parts))])  # fmt: skip
    metrics.counter_from("scan_walk_folders", "Model folders a scan walked, or took from the last walk", ("how",),
                         lambda: [({"how": "walked"}, float(scan_service.counters.walked_folders)),
                                  ({"how": "kept"}, float(scan_service.counters.kept_folders))])  # fmt: skip
    metrics.gauge_from("library_up", "1 while the library folder is readable, 0 while it is missing", (),
                       lambda: [({}, float(watcher.available))])  # fmt: skip
    metrics.gauge_from("ws_clients", "Open /ws connections", (), lambda: [({}, float(hub.client_count))])
    metrics.counter_from("ws_dropped_clients", "WebSocket clients dropped for falling behind", (),
                         lambda: [({}, float(hub.dropped_total))])  # fmt: skip
    if link is not None:
        metrics.gauge_from("redis_up", "1 while Redis answers, 0 while it is down", (),
                           lambda: [({}, float(link.up))])  # fmt: skip
