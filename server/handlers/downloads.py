"""GET /api/download: ZIP, PDF and ZIP-of-PDFs of a model, several models or a whole site.

Thin: parse and validate (all 400/404s before the response starts), ask the download
service, then answer one of three ways: a cache hit through `send_file` (sendfile, Range,
If-Range), an in-memory body (`buffer`), or a `StreamResponse` with an exact Content-Length
fed part by part (`stream`). Also wires the service: its index (SQLite or Redis) and store
opened in a cleanup context, leftover temp files removed at start, and the cache's figures
and clearing registered for /api/cache_stats and /api/clear_cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import unicodedata
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from aiohttp import web
from prometheus_client import Counter, Histogram

from .. import keys
from ..archives import ArchiveSourceChanged
from ..cache.downloads import DownloadIndex, DownloadStore, LocalIndex, RedisIndex
from ..conditional import matches_weak
from ..downloads import FORMATS, Download, DownloadService, Sink, auto_threshold_mb
from ..errors import Conflict
from ..params import Query
from .responses import open_off_loop, send_file

log = logging.getLogger("archive_catalog")

CACHE_CONTROL = "private, no-cache"
SENDFILE_FALLBACK_CHUNK = 256 * 1024
REDIS_PREFIX = "archive-catalog:downloads"
STALE_TEMP_AGE_S = 3600.0  # with a shared (Redis) cache, other instances' temp files are younger


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name as RFC 5987 `filename*`."""
    ascii_name = unicodedata.normalize("NFKD", filename.replace("—", "-").replace("–", "-"))
    ascii_name = "".join(c for c in ascii_name if c.isascii() and c.isprintable() and c not in '"\\')
    ascii_name = ascii_name.strip() or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _headers(download: Download) -> dict[str, str]:
    return {
        "Content-Disposition": content_disposition(download.filename),
        "X-Cache": "HIT" if download.strategy == "cache" else "MISS",
        "X-Download-Strategy": download.strategy,
        "ETag": f'"{download.key}"',
        "Cache-Control": CACHE_CONTROL,
    }


class ResponseSink:
    """Bytes through the response writer; file regions straight from disk with sendfile."""

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        self._request = request
        self._response = response

    async def write(self, data: bytes) -> None:
        await self._response.write(data)

    async def sendfile(self, path: str, offset: int, count: int) -> None:
        loop = asyncio.get_running_loop()
        handle = await open_off_loop(_open_exactly, path, offset + count)
        try:
            transport = self._request.transport
            if transport is None or transport.is_closing():
                raise ConnectionResetError("Connection lost")
            try:
                sent = await loop.sendfile(transport, handle, offset, count)
            except NotImplementedError:
                sent = await self._copy(handle, offset, count)
            if sent != count:
                raise ArchiveSourceChanged(f"{path} changed while it was being sent")
        finally:
            handle.close()

    async def _copy(self, handle: BinaryIO, offset: int, count: int) -> int:
        loop = asyncio.get_running_loop()
        handle.seek(offset)
        sent = 0
        while sent < count:
            chunk = await loop.run_in_executor(None, handle.read, min(SENDFILE_FALLBACK_CHUNK, count - sent))
            if not chunk:
                break
            await self._response.write(chunk)
            sent += len(chunk)
        return sent


def _open_exactly(path: str, needed: int) -> BinaryIO:
    handle = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
    if os.fstat(handle.fileno()).st_size < needed:
        handle.close()
        raise ArchiveSourceChanged(f"{path} is shorter than planned")
    return handle


async def download(request: web.Request) -> web.StreamResponse:
    query = Query(request.rel_url.raw_query_string)
    query.reject_unknown(("site", "model", "format"))
    site = query.required("site")
    fmt = query.choice("format", FORMATS, "zip")
    models = query.all("model")
    for model in models:
        if not model:
            query.required("model")  # the same 400 as for any empty required parameter
    service = request.app[keys.DOWNLOADS]
    prepared = await service.prepare(site, models, fmt)
    headers = _headers(prepared)
    if request.method == "GET":
        figures = request.app[DOWNLOAD_METRICS]
        figures.downloads.labels(prepared.strategy, fmt).inc()
        figures.bytes.labels(prepared.strategy).inc(prepared.estimate)
    if prepared.cached_path is not None:
        etag = headers.pop("ETag")
        return await send_file(
            request, str(prepared.cached_path), prepared.content_type, CACHE_CONTROL, headers, etag=etag
        )
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and matches_weak(if_none_match, headers["ETag"]):
        return web.Response(status=304, headers=headers)  # same key, same bytes: nothing to build
    response = web.StreamResponse(headers=headers)
    response.content_type = prepared.content_type
    if request.method == "HEAD":  # nothing is built just to count bytes; a ZIP's size is known anyway
        if fmt == "zip":
            response.content_length = prepared.estimate
        await response.prepare(request)
        return response
    if prepared.strategy == "buffer":
        with request.app[DOWNLOAD_METRICS].build_seconds.labels(fmt, "buffer").time():
            body = await service.buffered(prepared, fmt)
        return web.Response(body=body, content_type=prepared.content_type, headers=headers)

    async def start(size: int) -> Sink:
        response.content_length = size
        await response.prepare(request)
        return ResponseSink(request, response)

    try:
        with request.app[DOWNLOAD_METRICS].build_seconds.labels(fmt, "stream").time():
            await service.stream(prepared, fmt, start)
    except ConnectionError:
        return response  # the client went away: logged once by the service, nothing more to send
    except ArchiveSourceChanged as exc:
        if not response.prepared:
            raise Conflict("A file changed while its archive was being planned; try again.") from None
        # the Content-Length promised can no longer be kept: cut the connection, never send a wrong archive
        log.warning("Download of %s abandoned: %s", prepared.filename, exc)
        if request.transport is not None:
            request.transport.abort()
        return response
    with contextlib.suppress(ConnectionError):  # every byte is out; a hang-up now changes nothing
        await response.write_eof()
    return response


def _open_index(app: web.Application) -> DownloadIndex:
    """The Redis index when the app has a Redis link (--redis-url), else the local one."""
    if keys.REDIS_LINK in app:
        return RedisIndex(app[keys.REDIS_LINK], REDIS_PREFIX)
    return LocalIndex(app[keys.CONFIG].cache_dir / "downloads" / "index.sqlite3")


async def downloads_context(app: web.Application) -> AsyncIterator[None]:
    """Open the index, remove leftover temp files, build the service; close them at shutdown.

    Runs after the cluster context, so with --redis-url the app's Redis link exists.
    """
    config = app[keys.CONFIG]
    index = await asyncio.to_thread(_open_index, app)
    store = DownloadStore(Path(config.cache_dir) / "downloads", index, config.download_cache_max_bytes)
    min_age = STALE_TEMP_AGE_S if index.name == "redis" else 0.0
    removed = await asyncio.to_thread(store.remove_leftover_temps, min_age)
    try:
        removed += await store.remove_orphans(min_age)
    except Exception as exc:  # the index is unreachable (Redis down): try again at the next start
        log.warning("Download cache: orphan check skipped (%s)", exc)
    if removed:
        log.info("Download cache: removed %d leftover file(s)", removed)
    max_builds = config.download_max_builds or 4 * (os.cpu_count() or 1)
    threshold_mb = config.threshold_mb
    if threshold_mb is None:
        threshold_mb = auto_threshold_mb(max_builds)
        log.info("Download cache threshold: %dMB", threshold_mb)
        log.info("(auto: a quarter of the available memory over %d concurrent builds)", max_builds)
    else:
        log.info("Download cache threshold: %dMB", threshold_mb)
    service = DownloadService(
        app[keys.CATALOG], store, threshold_mb * 1_000_000, max_builds, config.download_queue_wait_s
    )
    app[keys.DOWNLOADS] = service
    unsubscribe = app[keys.EVENTS].subscribe(service.on_event)
    try:
        yield
    finally:
        unsubscribe()
        await service.close()
        await index.close()


def setup(app: web.Application) -> None:
    """The route and the cache's stats and clearing (the service comes from `downloads_context`)."""

    async def stats() -> dict[str, object]:
        return {"download_cache": await app[keys.DOWNLOADS].stats()}

    async def clear() -> dict[str, str]:
        return {"download_cache": await app[keys.DOWNLOADS].clear()}

    app.router.add_get("/api/download", download)
    app[keys.STATS_PROVIDERS].append(stats)
    app[keys.CLEARERS].append(clear)
    _register_metrics(app)


@dataclass(frozen=True)
class DownloadMetrics:
    downloads: Counter
    bytes: Counter
    build_seconds: Histogram


DOWNLOAD_METRICS = web.AppKey("download_metrics", DownloadMetrics)
BUILD_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


def _register_metrics(app: web.Application) -> None:
    def figure(name: str) -> Callable[[], list[tuple[dict[str, str], float]]]:
        def read() -> list[tuple[dict[str, str], float]]:
            service = app.get(keys.DOWNLOADS)
            return [({}, float(getattr(service, name)))] if service is not None else []

        return read

    metrics = app[keys.METRICS]
    app[DOWNLOAD_METRICS] = DownloadMetrics(
        downloads=metrics.counter("downloads", "Downloads by strategy and format", ("strategy", "format")),
        bytes=metrics.counter("download_bytes", "Archive bytes answered, by strategy", ("strategy",)),
        build_seconds=metrics.histogram(
            "archive_build_seconds", "Time to build and send an archive", BUILD_BUCKETS, ("format", "strategy")
        ),
    )
    metrics.counter_from("download_cache_hits", "Downloads served from the download cache", (), figure("hits"))
    metrics.counter_from("download_cache_misses", "Downloads that had to be built", (), figure("misses"))
    metrics.gauge_from("download_builds", "Archives being built or streamed now", (), figure("builds_running"))
