"""The download service: selection -> cache key -> plan -> buffer or stream, cache on the side.

No aiohttp here: the handler gives a `Sink` (write bytes, send a file region) and shapes
headers. What this module owns:
- the selection (one model, several, or a whole site) with each file stat'ed fresh, and the
  cache key: format + selection + every file's relative path, size and mtime;
- the strategy: archives estimated below the threshold are rendered in memory once (concurrent
  requests share the build), sent, and stored in the cache in the background; larger ones are
  streamed part by part while a writer thread makes the cache copy (copy_file_range for file
  regions) and a CRC thread feeds the ZIP data descriptors;
- the bound on concurrent builds (a queue with a deadline, then 503 + Retry-After).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import blake3
from prometheus_client import Counter, Histogram

from server.archives import (
    FORMAT_VERSION,
    ArchivePlan,
    ArchiveSourceChanged,
    CrcCache,
    CrcJob,
    Deferred,
    FileIdentity,
    FileSpan,
    NotAnImage,
    PdfImage,
    ZipEntry,
    job_crc,
    pdf_entry,
    pdf_image,
    pdf_plan,
    render_bytes,
    zip_plan,
)
from server.cache.downloads import DownloadStore, discard
from server.catalog import Catalog
from server.errors import Conflict, NotFound, ServiceUnavailable
from server.infra.events import LibraryChanged
from server.infra.metrics import Metrics
from server.library import natural_key

log = logging.getLogger("archive_catalog")

FORMATS = ("zip", "pdf", "pdfs-zip")
EXTENSIONS = {"zip": "zip", "pdf": "pdf", "pdfs-zip": "zip"}
CONTENT_TYPES = {"zip": "application/zip", "pdf": "application/pdf", "pdfs-zip": "application/zip"}
PDF_PAGE_OVERHEAD = 600  # bytes of PDF structure per page, for estimates
COPY_STEP = 64 * 1024 * 1024  # copy_file_range per call, so a cancelled build stops soon
MB = 1_000_000
# The cache copy yields the CPU to the client's bytes and the CRCs they wait for: it may
# finish after the response, which only delays the moment the archive becomes a cache hit.
WRITER_NICE = 19


class _Abandoned(Exception):
    """The request building a shared in-memory archive was cancelled before it finished."""


class Sink(Protocol):
    """Where a streamed archive goes: the client connection."""

    async def write(self, data: bytes) -> None: ...
    async def sendfile(self, path: str, offset: int, count: int) -> None: ...


@dataclass(frozen=True, slots=True)
class SelectedFile:
    model: str
    name: str
    path: str
    size: int
    mtime: float
    mtime_ns: int
    inode: int
    kind: str

    @property
    def archive_name(self) -> str:
        return f"{self.model}/{self.name}"


@dataclass(frozen=True, slots=True)
class Selection:
    site: str
    models: tuple[str, ...]
    whole_site: bool
    files: tuple[SelectedFile, ...]

    def images(self) -> list[SelectedFile]:
        return [f for f in self.files if f.kind == "image"]

    @property
    def scope(self) -> tuple[str, ...]:
        """The models named, or none for the whole site (what a delete must purge)."""
        return () if self.whole_site else self.models


@dataclass(slots=True)
class Download:
    """What the handler needs to answer: name, type, key, strategy and a way to produce it."""

    key: str
    filename: str
    content_type: str
    extension: str
    estimate: int
    strategy: str  # "cache" | "buffer" | "stream"
    cached_path: Path | None = None
    selection: Selection | None = None


def download_filename(selection: Selection, fmt: str) -> str:
    if selection.whole_site:
        base = selection.site
    elif len(selection.models) == 1:
        base = f"{selection.site} — {selection.models[0].replace('/', ' - ')}"
    else:
        base = f"{selection.site} — {len(selection.models)} models"
    if fmt == "pdfs-zip":
        base += " (PDFs)"
    return f"{base}.{EXTENSIONS[fmt]}"


def selection_key(fmt: str, selection: Selection) -> str:
    hasher = blake3.blake3()
    models = "\x00*" if selection.whole_site else "\x00".join(selection.models)
    hasher.update(f"{FORMAT_VERSION}\x00{fmt}\x00{selection.site}\x00{models}\x01".encode())
    for f in selection.files:
        hasher.update(f"{f.archive_name}\x00{f.size}\x00{f.mtime_ns}\x01".encode())
    return hasher.hexdigest()[:40]


def _stat_files(folder: Path, model: str, names: Sequence[tuple[str, str]]) -> list[SelectedFile]:
    out = []
    for name, kind in names:
        path = str(folder / name)
        try:
            info = os.stat(path)
        except OSError:
            continue  # gone since the listing: not part of the archive
        out.append(SelectedFile(model, name, path, info.st_size, info.st_mtime, info.st_mtime_ns, info.st_ino, kind))
    return out


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


class CrcRunner:
    """Computes the plan's entry CRCs in order in one thread; async and thread waiters."""

    def __init__(self, jobs: Sequence[CrcJob], cache: CrcCache) -> None:
        self._jobs = jobs
        self._cache = cache
        self.values: list[int] = []
        self._error: BaseException | None = None
        self._condition = threading.Condition()
        self._stop = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._progress = asyncio.Event()
        self._future: asyncio.Future[None] | None = None

    def start(self) -> None:
        if self._jobs:
            self._future = in_thread(self._run, name="download-crc")  # off the shared executor

    def _run(self) -> None:
        try:
            for job in self._jobs:
                if self._stop.is_set():
                    raise ArchiveSourceChanged("stopped")
                value = job_crc(job, self._cache)
                with self._condition:
                    self.values.append(value)
                    self._condition.notify_all()
                self._loop.call_soon_threadsafe(self._progress.set)
        except BaseException as exc:
            with self._condition:
                self._error = exc
                self._condition.notify_all()
            self._loop.call_soon_threadsafe(self._progress.set)

    async def wait(self, count: int) -> Sequence[int]:
        while len(self.values) < count:
            if self._error is not None:
                raise self._error
            self._progress.clear()
            if len(self.values) >= count or self._error is not None:
                continue
            await self._progress.wait()
        return self.values

    def wait_sync(self, count: int, stop: threading.Event) -> Sequence[int]:
        with self._condition:
            while len(self.values) < count:
                if self._error is not None:
                    raise self._error
                if stop.is_set():
                    raise ArchiveSourceChanged("stopped")
                self._condition.wait(0.1)
        return self.values

    async def close(self) -> None:
        self._stop.set()
        if self._future is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._future)


def write_plan(plan: ArchivePlan, temp: Path, crcs: CrcRunner, stop: threading.Event) -> None:
    """The cache copy of a plan (blocking): headers written, file regions copied by the kernel."""
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        pending = bytearray()
        for part in plan.parts:
            if stop.is_set():
                raise ArchiveSourceChanged("stopped")
            if isinstance(part, bytes):
                pending += part
                continue
            if isinstance(part, Deferred):
                pending += part.render(crcs.wait_sync(part.needs, stop))
                continue
            if pending:
                _write_all(fd, pending)
                pending.clear()
            _copy_span(part, fd, stop)
        if pending:
            _write_all(fd, pending)
        if os.fstat(fd).st_size != plan.size:
            raise ArchiveSourceChanged("the cache copy has the wrong size")
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _copy_span(span: FileSpan, out_fd: int, stop: threading.Event) -> None:
    source = os.open(span.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        offset, remaining = span.offset, span.length
        while remaining > 0:
            if stop.is_set():
                raise ArchiveSourceChanged("stopped")
            try:
                copied = os.copy_file_range(source, out_fd, min(COPY_STEP, remaining), offset)
            except OSError:  # another filesystem or no support: copy through user space
                os.lseek(source, offset, os.SEEK_SET)
                data = os.read(source, min(1024 * 1024, remaining))
                _write_all(out_fd, data)
                copied = len(data)
            if copied == 0:
                raise ArchiveSourceChanged(f"{span.path} is shorter than planned")
            offset += copied
            remaining -= copied
    finally:
        os.close(source)


async def pump(plan: ArchivePlan, sink: Sink, crcs: CrcRunner) -> None:
    """Send a plan: header bytes written, file regions through sendfile, descriptors when ready."""
    pending = bytearray()
    for part in plan.parts:
        if isinstance(part, bytes):
            pending += part
        elif isinstance(part, Deferred):
            pending += part.render(await crcs.wait(part.needs))
        else:
            if pending:
                await sink.write(bytes(pending))
                pending.clear()
            await sink.sendfile(part.path, part.offset, part.length)
    if pending:
        await sink.write(bytes(pending))


class DownloadService:
    def __init__(
        self,
        catalog: Catalog,
        store: DownloadStore,
        threshold_bytes: int,
        max_builds: int,
        queue_wait_s: float,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.threshold_bytes = threshold_bytes
        self.max_builds = max_builds
        self.queue_wait_s = queue_wait_s
        self.crc_cache = CrcCache()
        self._slots = asyncio.Semaphore(max_builds)
        self._running = 0
        self._buffers: dict[str, asyncio.Future[bytearray]] = {}
        self._streaming: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._stops: set[threading.Event] = set()  # one per cache copy being written

    # -- selection ----------------------------------------------------------------------

    async def select(self, site: str, models: Sequence[str]) -> Selection:
        whole_site = not models
        if whole_site:
            listing = await self.catalog.site_listing(site)
            names = [m.name for m in listing.models]
            if not names:
                raise NotFound(f"Site {site!r} holds no media.")
        else:
            names = sorted(set(models), key=natural_key)
        files: list[SelectedFile] = []
        for model in names:
            try:
                folder = await self.catalog.folder(site, model)
            except NotFound:
                if not whole_site:
                    raise
                continue  # gone since the site was walked: the rest of the site still downloads
            media = [(f.name, "image") for f in folder.images] + [(f.name, "video") for f in folder.videos]
            if not media and not whole_site:
                raise NotFound(f"Model {model!r} in site {site!r} holds no media.")
            files.extend(await asyncio.to_thread(_stat_files, folder.path, model, media))
        return Selection(site, tuple(names), whole_site, tuple(files))

    # -- the request path ---------------------------------------------------------------

    async def prepare(self, site: str, models: Sequence[str], fmt: str) -> Download:
        """Everything checked (404s), the cache looked up, the strategy of a miss chosen."""
        selection = await self.select(site, models)
        if fmt in ("pdf", "pdfs-zip") and not selection.images():
            raise NotFound("There are no images to put in a PDF.")
        key = selection_key(fmt, selection)
        download = Download(
            key=key,
            filename=download_filename(selection, fmt),
            content_type=CONTENT_TYPES[fmt],
            extension=EXTENSIONS[fmt],
            estimate=self._estimate(selection, fmt),
            strategy="cache",
            selection=selection,
        )
        cached = await self._lookup(key)
        if cached is not None:
            log.info("Cache hit for key: %s", key)
            download.cached_path = cached
            return download
        log.info("Estimated size: %.2fMB", download.estimate / MB)
        if download.estimate < self.threshold_bytes:
            log.info("Using buffer cache strategy")
            download.strategy = "buffer"
        else:
            log.info("Using streaming cache strategy")
            download.strategy = "stream"
        return download

    async def _lookup(self, key: str) -> Path | None:
        try:
            return await self.store.lookup(key)
        except Exception as exc:  # an index outage must not break downloads
            log.warning("Download cache index unavailable (%s): building without the cache", exc)
            return None

    @staticmethod
    def _estimate(selection: Selection, fmt: str) -> int:
        if fmt == "zip":
            return zip_plan(_zip_entries(selection)).size
        images = selection.images()
        pdfs = len({f.model for f in images}) if fmt == "pdfs-zip" else 1
        return sum(f.size for f in images) + PDF_PAGE_OVERHEAD * len(images) + 1000 * pdfs

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

    async def plan(self, selection: Selection, fmt: str) -> ArchivePlan:
        if fmt == "zip":
            return zip_plan(_zip_entries(selection))
        spool = self.store.new_temp()
        try:
            return await asyncio.to_thread(_pdf_plan, selection, fmt, spool)
        except BaseException as exc:
            discard(spool)
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ServiceUnavailable(
                    "The cache folder's disk is full: the PDF cannot be prepared; try again later.", code="disk_full"
                ) from None
            raise

    async def buffered(self, download: Download, fmt: str) -> bytearray:
        """The archive rendered in memory (once for concurrent requests), stored in the background."""
        assert download.selection is not None
        return await self._buffered(download.key, download.selection, fmt, download.extension)

    async def _buffered(self, key: str, selection: Selection, fmt: str, extension: str) -> bytearray:
        while (shared := self._buffers.get(key)) is not None:
            try:
                return await asyncio.shield(shared)
            except _Abandoned:
                continue  # the first requester went away mid-build: build it here
        future: asyncio.Future[bytearray] = asyncio.get_running_loop().create_future()
        self._buffers[key] = future
        try:
            async with self.build_slot():
                plan = await self.plan(selection, fmt)
                try:
                    body = await asyncio.to_thread(render_bytes, plan, self.crc_cache)
                except ArchiveSourceChanged:
                    raise Conflict(
                        "A file changed while its archive was being built; try again.", code="changed_during_build"
                    ) from None
                finally:
                    if plan.spool:
                        discard(Path(plan.spool))
            future.set_result(body)
        except BaseException as exc:
            future.set_exception(_Abandoned() if isinstance(exc, asyncio.CancelledError) else exc)
            future.exception()  # retrieved: waiters (if any) get it through their await
            raise
        finally:
            del self._buffers[key]
        self._in_background(self._store_body(key, extension, body, selection))
        return body

    async def _store_body(self, key: str, extension: str, body: bytearray, selection: Selection) -> None:
        try:
            if await self.store.store_bytes(key, extension, body, selection.site, selection.scope):
                log.info("Async cache saved: %s", key)
        except Exception as exc:
            log.warning("Download cache could not save %s: %s", key, exc)

    def _in_background(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def stream(self, download: Download, fmt: str, start: Callable[[int], Awaitable[Sink]]) -> None:
        """Build the plan, start the response (`start(size)`), send it and keep a cache copy.

        Only the first of concurrent requests for one key writes the cache; the others
        stream on their own (a slow client slows only itself). A failure or disconnect before
        the last byte deletes the temp file and indexes nothing; once every byte is sent the
        cache copy is finished in the background (the client may hang up at once).
        """
        assert download.selection is not None
        await self._acquire_slot()
        handed_off = False
        plan: ArchivePlan | None = None
        writes_cache = False
        temp: Path | None = None
        stop = threading.Event()  # tells the cache writer to give up (a failure, or shutdown)
        self._stops.add(stop)
        try:
            plan = await self.plan(download.selection, fmt)
            writes_cache = download.key not in self._streaming and plan.size <= self.store.max_bytes
            if writes_cache:
                self._streaming.add(download.key)
                temp = self.store.new_temp()
            crcs = CrcRunner(plan.crc_jobs, self.crc_cache)
            writer: asyncio.Future[None] | None = None
            try:
                sink = await start(plan.size)
                crcs.start()
                if temp is not None:
                    writer = in_thread(write_plan, plan, temp, crcs, stop, nice=WRITER_NICE)
                    writer.add_done_callback(_retrieve)
                await pump(plan, sink, crcs)
            except BaseException as exc:
                stop.set()
                if writer is not None:
                    with contextlib.suppress(BaseException):
                        await asyncio.shield(writer)
                await crcs.close()
                if isinstance(exc, ConnectionError | asyncio.CancelledError):
                    log.info("Download of %s aborted: the client went away", download.filename)
                raise
            self._in_background(self._finish_stream(download, plan, temp, writer, crcs, writes_cache, stop))
            handed_off = True
        finally:
            if not handed_off:
                self._stops.discard(stop)
                self._end_stream(download, plan, temp, writes_cache)

    async def _finish_stream(
        self,
        download: Download,
        plan: ArchivePlan,
        temp: Path | None,
        writer: asyncio.Future[None] | None,
        crcs: CrcRunner,
        writes_cache: bool,
        stop: threading.Event,
    ) -> None:
        """After the last byte went out: complete the cache copy, index it, free the slot."""
        try:
            if writer is not None and temp is not None:
                await writer
                await self._commit_stream(temp, download, plan.size)
        except Exception as exc:
            log.warning("Download cache could not save %s: %s", download.key, exc)
        finally:
            self._stops.discard(stop)
            await crcs.close()
            self._end_stream(download, plan, temp, writes_cache)

    def _end_stream(self, download: Download, plan: ArchivePlan | None, temp: Path | None, writes_cache: bool) -> None:
        if temp is not None:
            discard(temp)
        if writes_cache:
            self._streaming.discard(download.key)
        if plan is not None and plan.spool:
            discard(Path(plan.spool))
        self._release_slot()

    async def _commit_stream(self, temp: Path, download: Download, size: int) -> None:
        try:
            assert download.selection is not None
            selection = download.selection
            if await self.store.commit(temp, download.key, download.extension, size, selection.site, selection.scope):
                log.info("Stream cache saved: %s", download.key)
        except Exception as exc:
            log.warning("Download cache could not save %s: %s", download.key, exc)

    # -- cache administration -----------------------------------------------------------

    def on_library_changed(self, event: LibraryChanged) -> None:
        """A delete or restore (from any instance): drop the archives that may hold what
        changed, so deleted media do not linger in the cache."""
        self._in_background(self._purge(event.site, event.model))

    async def _purge(self, site: str, model: str | None) -> None:
        try:
            dropped = await self.store.purge(site, model)
        except Exception as exc:
            log.warning("Download cache could not drop archives of %s/%s: %s", site, model or "*", exc)
            return
        if dropped:
            log.info("Download cache dropped %d archive(s) of %s/%s after a change", dropped, site, model or "*")

    async def stats(self) -> dict[str, object]:
        try:
            return await self.store.stats()
        except Exception as exc:
            log.warning("Download cache index unavailable: %s", exc)
            return {
                "entries": 0,
                "bytes": 0,
                "max_bytes": self.store.max_bytes,
                "hits": self.store.hits,
                "misses": self.store.misses,
                "index": self.store.index.name,
                "error": "index unavailable",
            }

    async def clear(self) -> str:
        self.crc_cache.clear()
        try:
            await self.store.clear()
        except Exception as exc:
            log.warning("Download cache index unavailable, not cleared: %s", exc)
            return "unavailable"
        return "cleared"

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
        for stop in list(self._stops):
            stop.set()
        await self.idle()


def in_thread(
    function: Callable[..., None], *args: object, nice: int = 0, name: str = "download-cache-writer"
) -> asyncio.Future[None]:
    """Run `function` in a thread of its own (niced: Linux sets priority per thread) -> a future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    def run() -> None:
        if nice:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        error: BaseException | None = None
        try:
            function(*args)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a helper's outcome as seen (its failure is reported by whoever awaits it, if anyone)."""
    if not future.cancelled():
        future.exception()


def _zip_entries(selection: Selection) -> list[ZipEntry]:
    return [
        ZipEntry(
            f.archive_name,
            f.size,
            f.mtime,
            (FileSpan(f.path, 0, f.size),),
            FileIdentity(f.path, f.size, f.mtime_ns, f.inode),
        )
        for f in selection.files
    ]


def _page_images(files: Sequence[SelectedFile], spool: object) -> list[PdfImage]:
    images = []
    for f in files:
        try:
            images.append(pdf_image(f.path, spool))  # type: ignore[arg-type]
        except NotAnImage:
            log.warning("Left out of the PDF (not a readable image): %s", f.archive_name)
    return images


def _pdf_plan(selection: Selection, fmt: str, spool_path: Path) -> ArchivePlan:
    """Probe (and for non-JPEGs convert) every image; blocking, run in a thread."""
    with open(spool_path, "w+b") as spool:
        if fmt == "pdf":
            images = _page_images(selection.images(), spool)
            if not images:
                raise NotFound("There are no readable images to put in a PDF.")
            plan = pdf_plan(images, str(spool_path))
            return plan
        entries = []
        for model in selection.models:
            files = [f for f in selection.images() if f.model == model]
            images = _page_images(files, spool)
            if images:
                mtime = max(f.mtime for f in files)
                entries.append(pdf_entry(f"{model}.pdf", images, mtime))
        if not entries:
            raise NotFound("There are no readable images to put in a PDF.")
    plan = zip_plan(entries)
    plan.spool = str(spool_path)
    return plan


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
