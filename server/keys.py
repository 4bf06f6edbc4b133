"""Every piece of application state, as typed `web.AppKey`s (set only while building the app
or inside cleanup contexts)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from server.cache.freshness import FolderWatcher
from server.cache.thumbnails import ThumbnailCache
from server.catalog import Catalog
from server.config import Config
from server.downloads.service import DownloadMetrics, DownloadService
from server.infra.cluster import EventRelay, RedisLink
from server.infra.events import EventBus
from server.infra.metrics import Metrics
from server.infra.representation import Rendered
from server.library import Library
from server.scan.service import ScanService
from server.trash import Trash
from server.web.access import AccessPolicy
from server.web.assets import StaticAssets
from server.web.hub import Hub

CONFIG = web.AppKey("config", Config)
INSTANCE_ID = web.AppKey("instance_id", str)  # random per process: tells workers apart
LIBRARY = web.AppKey("library", Library)
WATCHER = web.AppKey("watcher", FolderWatcher)
CATALOG = web.AppKey("catalog", Catalog)
TRASH = web.AppKey("trash", Trash)
EVENTS = web.AppKey("events", EventBus)
ACCESS = web.AppKey("access", AccessPolicy)
OPENAPI_DOCUMENT = web.AppKey("openapi_document", Rendered)
METRICS = web.AppKey("metrics", Metrics)
REDIS_LINK = web.AppKey("redis_link", RedisLink)  # set only when --redis-url is given
EVENT_RELAY = web.AppKey("event_relay", EventRelay)  # likewise
DOWNLOADS = web.AppKey("downloads", DownloadService)
DOWNLOAD_METRICS = web.AppKey("download_metrics", DownloadMetrics)
THUMBNAILS = web.AppKey("thumbnails", ThumbnailCache)
STATIC_ASSETS = web.AppKey("static_assets", StaticAssets)
SCAN = web.AppKey("scan", ScanService)
HUB = web.AppKey("hub", Hub)

# Figures for /api/cache_stats and clearing for /api/clear_cache from each capability that
# owns a cache (downloads, hash cache, thumbnails), listed in `server.app`.
StatsProvider = Callable[[], Awaitable[dict[str, object]]]
Clearer = Callable[[], Awaitable[dict[str, str]]]
STATS_PROVIDERS = web.AppKey("stats_providers", list[StatsProvider])
CLEARERS = web.AppKey("clearers", list[Clearer])
HealthCheck = Callable[[], Awaitable[dict[str, str]]]
HEALTH_CHECKS = web.AppKey("health_checks", list[HealthCheck])
