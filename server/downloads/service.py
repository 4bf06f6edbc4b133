"""The download service: prepare a download, choose its strategy, build it, keep it cached.

No aiohttp here: the handler gives a `Sink` (write bytes, send a file region) and shapes
headers. What this module owns:
- `prepare`: the selection (404s), the cache key and lookup, the strategy of a miss;
- the strategy: archives estimated below the threshold are rendered in memory once (concurrent
  requests share the build), sent, and stored in the cache in the background (`buffered`);
  larger ones are streamed part by part by the engine of `streaming` while its writer thread
  makes the cache copy (`stream`); a Range asked of a stream is sent from the plan
  (`stream_range`);
- the one place a source file that changed during a build becomes a 409 (before the response
  starts; after it, the handler can only cut the connection);
- the bound on concurrent builds (a queue with a deadline, then 503 + Retry-After);
- cache administration: purge after a library change, stats, clear. The cache is used through
  `TolerantCache`, so an index outage only means downloads are built without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from prometheus_client import Counter, Histogram

from server.archives.plans import ArchivePlan, ArchiveSourceChanged, CrcCache, render_bytes
from server.cache.downloads import CachedArchive, DownloadStore, discard
from server.catalog import Catalog
from server.downloads.cache import TolerantCache
from server.downloads.plans import pdf_archive_plan, pdf_estimate, zip_archive_plan
from server.downloads.selection import (
    CONTENT_TYPES,
    EXTENSIONS,
    Selection,
    StatMemo,
    download_filename,
    readable,
    select,
    selection_key,
)
from server.downloads.streaming import (
    WRITER_NICE,
    CrcRunner,
    Sink,
    in_thread,
    plan_slice,
    pump,
    retrieve,
    write_plan,
)
from server.errors import Conflict, NotFound, ServiceUnavailable
from server.infra.events import LibraryChanged
from server.infra.folder_events import FolderEvents
from server.infra.metrics import Metrics

log = logging.getLogger("archive_catalog")

MB = 1_000_000
Strategy = Literal["cache", "buffer", "stream"]


class _Abandoned(Exception):
    """The request building a shared in-memory archive was cancelled before it finished."""


@dataclass(slots=True)
class Download:
    """What the handler needs to answer: name, type, key, strategy and what to build."""

    key: str
    filename: str
    fmt: str
    content_type: str
    extension: str
    strategy: Strategy
    selection: Selection
    estimate: int = 0  # bytes: the cached archive's size on a hit, else the planned size
    cached: CachedArchive | None = None  # a hit, open: whoever answers closes it
    plan: ArchivePlan | None = None  # a ZIP miss's plan, made by `prepare` for its size and used to build it


@dataclass(slots=True, eq=False)
class _StreamBuild:
    """One streamed build's resources; released once, by `DownloadService._end_stream`."""

    download: Download
    stop: threading.Event = field(default_factory=threading.Event)  # tells the cache writer to give up
    invalidations: int = 0  # the service's count when the build started: a clear or purge since, no cache copy
    plan: ArchivePlan | None = None
    temp: Path | None = None  # the cache copy, written only by the first of concurrent streams of a key
    crcs: CrcRunner | None = None
    writer: asyncio.Future[None] | None = None

    async def halt(self) -> None:
        """A failure or disconnect: stop the writer and the CRC thread, and wait for them."""
        self.stop.set()
        if self.writer is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(self.writer)
        if self.crcs is not None:
            await self.crcs.close()


@contextlib.contextmanager
def _changes_conflict() -> Iterator[None]:
    """The one mapping of a source file that changed under a build to a 409."""
    try:
        yield
    except ArchiveSourceChanged:
        raise Conflict(
            "A file changed while its archive was being built; try again.", code="changed_during_build"
        ) from None


def auto_threshold_mb(max_builds: int, available_bytes: int | None = None) -> int:
    """A quarter of the available memory shared by the concurrent builds, within 16..256 MB.

    Above a few hundred MB buffering buys nothing (streaming is as fast) and only risks memory."""
    available = available_bytes if available_bytes is not None else available_memory()
    return max(16, min(256, available // 4 // max(1, max_builds) // MB))


def available_memory() -> int:
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


class DownloadService:
    def __init__(
        self,
        catalog: Catalog,
        store: DownloadStore,
        threshold_bytes: int,
        max_builds: int,
        queue_wait_s: float,
        folder_events: FolderEvents | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.cache = TolerantCache(store)
        self.threshold_bytes = threshold_bytes
        self.max_builds = max_builds
        self.queue_wait_s = queue_wait_s
        self.crc_cache = CrcCache()
        self.stat_memo = StatMemo(folder_events)  # repeat downloads of unchanged folders: no stat per file
        self._slots = asyncio.Semaphore(max_builds)
        self._running = 0
        self._buffers: dict[str, asyncio.Future[bytearray]] = {}
        self._streaming: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._builds: set[_StreamBuild] = set()  # streamed builds whose helpers may still run
        # clears and purges so far: a build that began before one is sent but not cached (it may
        # hold what was deleted, and a cleared cache should stay empty of what was in flight)
        self._invalidations = 0

    # -- the request path ---------------------------------------------------------------

    async def prepare(self, site: str, models: Sequence[str], fmt: str) -> Download:
        """Everything checked (404s), the cache looked up, the strategy of a miss chosen."""
        selection = await select(self.catalog, site, models, self.stat_memo)  # stat'ed: enough for a cache hit
        key = selection_key(fmt, selection)
        cached = await self.cache.lookup(key)
        if cached is None:  # to be built: only files the server can read (a file left out: another key)
            opened = await readable(selection)
            if opened.files != selection.files:
                key = selection_key(fmt, opened)
                cached = await self.cache.lookup(key)
            selection = opened
        if fmt in ("pdf", "pdfs-zip") and not selection.images():
            raise NotFound("There are no images to put in a PDF.")
        download = Download(
            key=key,
            filename=download_filename(selection, fmt),
            fmt=fmt,
            content_type=CONTENT_TYPES[fmt],
            extension=EXTENSIONS[fmt],
            strategy="cache",
            selection=selection,
        )
        if cached is not None:  # the hot path of a repeat download: nothing planned
            log.info("Cache hit for key: %s", key)
            download.cached, download.estimate = cached, cached.info.st_size
            return download
        if fmt == "zip":  # planned off the loop (a big site's plan is tens of ms of Python), once
            download.plan = await asyncio.to_thread(zip_archive_plan, selection)
            download.estimate = download.plan.size
        else:
            download.estimate = pdf_estimate(selection, fmt)
        log.info("Estimated size: %.2fMB", download.estimate / MB)
        if download.estimate < self.threshold_bytes:
            log.info("Using buffer cache strategy")
            download.strategy = "buffer"
        else:
            log.info("Using streaming cache strategy")
            download.strategy = "stream"
        return download

    @contextlib.asynccontextmanager
    async def build_slot(self) -> AsyncIterator[None]:
        """One of the bounded build slots, waited for at most `queue_wait_s`, else 503."""
        await self._acquire_slot()
        try:
            yield
        finally:
            self._release_slot()

    async def _acquire_slot(self) -> None:
        try:
            async with asyncio.timeout(self.queue_wait_s):
                await self._slots.acquire()
        except TimeoutError:
            retry = max(1, round(self.queue_wait_s))
            raise ServiceUnavailable(
                "Too many archives are being built right now; try again shortly.",
                code="downloads_busy",
                headers={"Retry-After": str(retry)},
            ) from None
        self._running += 1

    def _release_slot(self) -> None:
        self._running -= 1
        self._slots.release()

    async def _plan(self, download: Download) -> ArchivePlan:
        if download.fmt == "zip":
            assert download.plan is not None  # planned by `prepare` with its size
            return download.plan
        spool = self.store.new_temp()
        try:
            return await asyncio.to_thread(pdf_archive_plan, download.selection, download.fmt, spool)
        except BaseException as exc:
            discard(spool)
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ServiceUnavailable(
                    "The cache folder's disk is full: the PDF cannot be prepared; try again later.", code="disk_full"
                ) from None
            raise

    # -- buffer: in memory, shared by concurrent requests ---------------------------------

    async def buffered(self, download: Download) -> bytearray:
        """The archive rendered in memory (once for concurrent requests), stored in the background."""
        while (shared := self._buffers.get(download.key)) is not None:
            try:
                return await asyncio.shield(shared)
            except _Abandoned:
                continue  # the first requester went away mid-build: build it here
        future: asyncio.Future[bytearray] = asyncio.get_running_loop().create_future()
        self._buffers[download.key] = future
        invalidations = self._invalidations
        try:
            async with self.build_slot():
                plan = await self._plan(download)
                try:
                    with _changes_conflict():
                        body = await asyncio.to_thread(render_bytes, plan, self.crc_cache)
                finally:
                    if plan.spool:
                        discard(Path(plan.spool))
            future.set_result(body)
        except BaseException as exc:
            future.set_exception(_Abandoned() if isinstance(exc, asyncio.CancelledError) else exc)
            future.exception()  # retrieved: waiters (if any) get it through their await
            raise
        finally:
            del self._buffers[download.key]
        self._in_background(self._store_body(download, body, invalidations))
        return body

    async def _store_body(self, download: Download, body: bytearray, invalidations: int) -> None:
        if self._uncacheable(download, invalidations):
            return
        selection = download.selection
        if await self.cache.store_bytes(download.key, download.extension, body, selection.site, selection.scope):
            log.info("Async cache saved: %s", download.key)

    def _in_background(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- stream: part by part, the cache copy written beside ------------------------------

    async def stream(self, download: Download, start: Callable[[int], Awaitable[Sink]]) -> None:
        """Plan, start the response (`start(size)`), send every part and keep a cache copy.

        Only the first of concurrent requests for one key writes the cache; the others
        stream on their own (a slow client slows only itself). A failure or disconnect before
        the last byte deletes the temp file and indexes nothing; once every byte is sent the
        cache copy is finished in the background (the client may hang up at once). An
        `ArchiveSourceChanged` raised from here means the response had started: the caller
        must cut the connection.
        """
        await self._acquire_slot()
        build = _StreamBuild(download, invalidations=self._invalidations)
        self._builds.add(build)
        try:
            with _changes_conflict():
                build.plan = plan = await self._plan(download)
            if download.key not in self._streaming and plan.size <= self.store.max_bytes:
                self._streaming.add(download.key)
                build.temp = self.store.new_temp()
            build.crcs = CrcRunner(plan.crc_jobs, self.crc_cache)
            sink = await start(plan.size)
            build.crcs.start()
            if build.temp is not None:
                build.writer = in_thread(write_plan, plan, build.temp, build.crcs, build.stop, nice=WRITER_NICE)
                build.writer.add_done_callback(retrieve)
            await pump(plan, sink, build.crcs)
        except BaseException as exc:
            await build.halt()
            if isinstance(exc, ConnectionError | asyncio.CancelledError):
                log.info("Download of %s aborted: the client went away", download.filename)
            self._end_stream(build)
            raise
        self._in_background(self._finish_stream(build, plan))

    async def _finish_stream(self, build: _StreamBuild, plan: ArchivePlan) -> None:
        """After the last byte went out: complete the cache copy, index it, free the slot."""
        download = build.download
        try:
            if build.writer is not None and build.temp is not None:
                await build.writer
                selection = download.selection
                if self._uncacheable(download, build.invalidations):
                    return  # the temp copy goes with the build (below)
                if await self.cache.commit(
                    build.temp, download.key, download.extension, plan.size, selection.site, selection.scope
                ):
                    log.info("Stream cache saved: %s", download.key)
        except Exception as exc:  # the cache writer failed (a full disk): the download itself went out
            log.warning("Download cache could not save %s: %s", download.key, exc)
        finally:
            await build.halt()  # the writer is done by now: this ends the CRC thread
            self._end_stream(build)

    async def stream_range(
        self, download: Download, first: int, length: int, start: Callable[[int], Awaitable[Sink]]
    ) -> None:
        """Bytes [first, first + length) of the archive a stream would send, e.g. one of the
        segments a download manager asks for over parallel connections: only the files in the
        range are sent and only the CRCs its descriptors need are computed (the CRC cache
        shares them with a full stream of the same files); nothing is cached."""
        async with self.build_slot():
            with _changes_conflict():
                plan = await self._plan(download)
            try:
                part = plan_slice(plan, first, first + length)
                crcs = CrcRunner(part.crc_jobs, self.crc_cache)
                sink = await start(part.size)
                crcs.start()
                try:
                    await pump(part, sink, crcs)
                finally:
                    await crcs.close()
            except (ConnectionError, asyncio.CancelledError):
                log.info("Download of %s aborted: the client went away", download.filename)
                raise
            finally:
                if plan.spool:
                    discard(Path(plan.spool))

    def _end_stream(self, build: _StreamBuild) -> None:
        self._builds.discard(build)
        if build.temp is not None:
            discard(build.temp)
            self._streaming.discard(build.download.key)
        if build.plan is not None and build.plan.spool:
            discard(Path(build.plan.spool))
        self._release_slot()

    # -- cache administration -----------------------------------------------------------

    def _uncacheable(self, download: Download, invalidations: int) -> bool:
        if invalidations == self._invalidations:
            return False
        log.info("Not cached (the cache was cleared or purged during the build): %s", download.key)
        return True

    def on_library_changed(self, event: LibraryChanged) -> None:
        """A delete or restore (from any instance): drop the archives that may hold what
        changed, so deleted media do not linger in the cache (nor in a build's copy to come)."""
        self._invalidations += 1
        self._in_background(self._purge(event.site, event.model))

    async def _purge(self, site: str, model: str | None) -> None:
        dropped = await self.cache.purge(site, model)
        if dropped:
            log.info("Download cache dropped %d archive(s) of %s/%s after a change", dropped, site, model or "*")

    async def stats(self) -> dict[str, object]:
        return await self.cache.stats()

    async def clear(self) -> str:
        self._invalidations += 1
        self.crc_cache.clear()
        return "cleared" if await self.cache.clear() else "unavailable"

    @property
    def hits(self) -> int:
        return self.store.hits

    @property
    def misses(self) -> int:
        return self.store.misses

    @property
    def builds_running(self) -> int:
        return self._running

    @property
    def streaming(self) -> frozenset[str]:
        """Keys whose cache copy is being written by a stream right now."""
        return frozenset(self._streaming)

    async def idle(self) -> None:
        """Wait for the background cache saves started so far."""
        for task in list(self._background):
            with contextlib.suppress(BaseException):
                await task

    async def close(self) -> None:
        """At shutdown: unfinished cache copies stop (their temp files go), saves in flight end."""
        for build in list(self._builds):
            build.stop.set()
        await self.idle()
        self.stat_memo.close()  # and the inotify stamps it shares with the library watcher


BUILD_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


@dataclass(frozen=True)
class DownloadMetrics:
    """The figures a download request records (the service's own state is read at scrape time)."""

    downloads: Counter
    bytes: Counter
    build_seconds: Histogram

    @classmethod
    def register(cls, metrics: Metrics, service: DownloadService) -> DownloadMetrics:
        metrics.counter_from("download_cache_hits", "Downloads served from the download cache", (),
                             lambda: [({}, float(service.hits))])  # fmt: skip
        metrics.counter_from("download_cache_misses", "Downloads that had to be built", (),
                             lambda: [({}, float(service.misses))])  # fmt: skip
        metrics.gauge_from("download_builds", "Archives being built or streamed now", (),
                           lambda: [({}, float(service.builds_running))])  # fmt: skip
        return cls(
            downloads=metrics.counter("downloads", "Downloads by strategy and format", ("strategy", "format")),
            bytes=metrics.counter("download_bytes", "Archive bytes answered, by strategy", ("strategy",)),
            build_seconds=metrics.histogram(
                "archive_build_seconds", "Time to build and send an archive", BUILD_BUCKETS, ("format", "strategy")
            ),
        )
