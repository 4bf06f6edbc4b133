"""Every piece of application state, as typed `web.AppKey`s (set only while building the app
or inside cleanup contexts)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .access import AccessPolicy
from .assets import StaticAssets
from .cache.freshness import FolderWatcher
from .cache.thumbnails import ThumbnailCache
from .catalog import Catalog
from .cluster import RedisLink
from .config import Config
from .downloads import DownloadService
from .events import EventBus
from .library import Library
from .metrics import Metrics
from .representation import Rendered
from .scan.hub import Hub
from .scan.service import ScanService
from .trash import Trash

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
DOWNLOADS = web.AppKey("downloads", DownloadService)
THUMBNAILS = web.AppKey("thumbnails", ThumbnailCache)
STATIC_ASSETS = web.AppKey("static_assets", StaticAssets)
SCAN = web.AppKey("scan", ScanService)
HUB = web.AppKey("hub", Hub)

# Figures for /api/cache_stats and clearing for /api/clear_cache, contributed by each
# capability that owns a cache (downloads, hash cache, thumbnails) when it is set up.
StatsProvider = Callable[[], Awaitable[dict[str, object]]]
Clearer = Callable[[], Awaitable[dict[str, str]]]
STATS_PROVIDERS = web.AppKey("stats_providers", list[StatsProvider])
CLEARERS = web.AppKey("clearers", list[Clearer])
HealthCheck = Callable[[], Awaitable[dict[str, str]]]
HEALTH_CHECKS = web.AppKey("health_checks", list[HealthCheck])
