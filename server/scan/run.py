"""One scan run: walk, work in the workers, live progress, and the one place its outcome is told.

`ScanRun` is what every kind of scan shares: the walk in the workers, the outcome (exactly one
of `scan.finished`, `scan.cancelled` or `scan.failed`; one `_fail(message)` path, whatever
failed), cancelling, the shared `Progress` (server.scan.progress: published at most ~10 times a
second, and at each phase change), sending batches to the workers (never more than two per
worker in flight, stopping between batches on a cancel) and saving what its cache learnt now and
then and on the way out. A kind supplies `_work`: what the walk's files become.

`ExactScanRun` (kind `exact`, phase `hashing`) groups files by size in the event loop thread
(cheap), settles from the hash cache what it can and sends the remaining same-size groups to
the workers in batches, then builds and saves the duplicate results. The similar-image kind is
`server.similar.run.SimilarScanRun`. The cluster lock and starting, cancelling and mirroring
scans are `ScanService`'s (server.scan.service). Pure: no aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
import os
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from itertools import chain
from multiprocessing.synchronize import Event as CancelEvent
from operator import itemgetter
from typing import Any, ClassVar, Protocol, TypeVar, cast

from server.errors import ServiceUnavailable
from server.infra.events import ScanCancelled, ScanFailed, ScanFinished, ScanStarted
from server.infra.folder_events import FolderEvents
from server.infra.pools import WorkerPool
from server.library import Library
from server.scan import hashing
from server.scan.hashcache import HashCache, Learnt
from server.scan.progress import Clock, Progress, ProgressEmitter, Publish
from server.scan.results import (
    Document,
    FileInfo,
    LastWalk,
    ResultsStore,
    Tally,
    WalkResult,
    duplicate_group,
    summarize_parts,
    walk_changes,
)

log = logging.getLogger("archive_catalog")
_path_of = itemgetter(0)  # of a FileInfo

BATCH_BYTES = 64 * 1024 * 1024
BATCH_FILES = 2048
BATCHES_PER_WORKER = 4  # work is split at least this finely, so the workers finish together
MIN_BATCH_BYTES = 4 * 1024 * 1024
MIN_BATCH_FILES = 64
YIELD_EVERY_GROUPS = 2000  # the event loop lets requests through between so many groups settled
IN_FLIGHT_PER_WORKER = 2  # batches in flight per worker: one working, one queued
WALK_FOLDERS_PER_PART = 32  # the walk is split into parts of about this many folders (a rescan keeps
WALK_PARTS_PER_WORKER = 8  # unchanged parts whole), at least one and at most this many per worker
CACHE_SAVE_INTERVAL_S = 30.0

# (size, its files, their hashes known from the cache, those and the walk's: what the workers get)
Batch = list[tuple[int, list[FileInfo], list[hashing.Member], list[hashing.Member]]]
# a settled group: (size, its files, their hashes known beforehand, the hashes that settled it)
Resolved = tuple[int, list[FileInfo], list[hashing.Member], Sequence[hashing.Outcome]]
# a first scan's group the walk's hashes settle: (size, its files, their full hashes)
SettledByWalk = tuple[int, list[FileInfo], list[str]]
Item = TypeVar("Item")
B = TypeVar("B")
R = TypeVar("R")


@dataclass(slots=True)
class ScanCounters:
    """Across scans, for /metrics: how scans ended here, and the bytes the workers hashed."""

    outcomes: dict[str, int] = field(default_factory=lambda: {"finished": 0, "cancelled": 0, "failed": 0})
    hashed_bytes: int = 0
    walked_parts: int = 0  # parts of the library sent to the workers to walk, whole or some folders
    kept_parts: int = 0  # parts a rescan kept whole from the last walk (inotify saw nothing change in them)
    walked_folders: int = 0  # model folders the workers walked
    kept_folders: int = 0  # model folders whose entries a rescan took from the last walk


@dataclass(slots=True)
class ScanTools:
    """What every run works with, whatever its kind; the service builds it once."""

    library: Library
    library_id: str
    pool: WorkerPool
    publish: Publish
    counters: ScanCounters
    cancel_flag: CancelEvent  # shared with the workers
    events: FolderEvents | None = None  # inotify stamps: a rescan reuses the folders nothing changed in


class ScanCache(Protocol):
    """What a run needs of its persistent cache (HashCache, PerceptualCache)."""

    @property
    def dirty(self) -> bool: ...
    def reload_if_changed(self) -> None: ...
    async def save(self) -> None: ...


class SavedResults(Protocol):
    """What a run needs of its results store (ResultsStore, SimilarResults)."""

    async def save(self) -> None: ...


@dataclass(slots=True)
class Finished:
    """What a finished run tells: `scan.finished`'s figures and its log line's."""

    groups: int
    total_wasted: int
    stats: dict[str, Any]
    summary: str  # "N files, N groups, ..." for the log

    @classmethod
    def of(cls, document: dict[str, Any], files: int, detail: str) -> Finished:
        """What a duplicate-results document tells (`detail` ends the log line)."""
        groups = len(document["groups"])
        return cls(groups, document["total_wasted"], document["stats"], f"{files} files, {groups} groups, {detail}")


@dataclass(slots=True)
class Settled:
    """What settling some files adds to the progress: files, bytes and the cache's part."""

    files: int = 0
    nbytes: int = 0
    cache_hits: int = 0  # files whose hashes all came from the cache
    hash_cache_hits: int = 0

    def add(self, other: Settled) -> None:
        self.files += other.files
        self.nbytes += other.nbytes
        self.cache_hits += other.cache_hits
        self.hash_cache_hits += other.hash_cache_hits


@dataclass(frozen=True, slots=True)
class Reuse:
    """A part of the last walk, and the indexes of the new part's folders to walk (the others'
    entries are the last part's; none to walk and the same folders: keep the part)."""

    last: hashing.PackedWalk
    again: list[int]


class ScanCancelledError(Exception):
    pass


class ScanFailedError(Exception):
    pass


class ScanRun(ABC):
    """One scan, from `scan.started` to its outcome; `cancel()` stops it at the next check."""

    kind: ClassVar[str]  # "exact" | "similar": named by every event and the progress
    work_phase: ClassVar[str]  # the progress phase of `_work` after the walk

    def __init__(
        self,
        scan_id: str,
        tools: ScanTools,
        progress: Progress,
        cache: ScanCache,
        results: SavedResults,
        *,
        clock: Clock,
        progress_interval_s: float,
        batch_bytes: int,
        batch_files: int,
        restart_pool: bool,
    ) -> None:
        self.scan_id = scan_id
        self.tools = tools
        self.progress = progress
        self.cache = cache
        self.results = results
        self.clock = clock
        self.batch_bytes = batch_bytes
        self.batch_files = batch_files
        self.pool_broken = restart_pool  # the pool is replaced first; a dead worker sets it again
        self.emitter = ProgressEmitter(tools.publish, tools.library_id, clock, progress_interval_s)
        self.cancel_requested = False
        self.started = 0.0
        self._work_started = 0.0
        self._last_cache_save = 0.0
        tools.cancel_flag.clear()  # a new run: the workers' flag starts clear

    def cancel(self) -> None:
        self.cancel_requested = True
        self.tools.cancel_flag.set()

    def _check_cancel(self) -> None:
        if self.cancel_requested:
            raise ScanCancelledError()

    @abstractmethod
    async def _work(self, walk: list[hashing.PackedWalk]) -> Finished:
        """The kind's part: from the walk's files (`hashing.unpack(walk)`) to results kept in
        memory (saved after `scan.finished`); raises ScanCancelledError or ScanFailedError to
        end otherwise."""

    # -- the outcome --------------------------------------------------------------------

    async def run(self) -> None:
        tools, scan_id, kind = self.tools, self.scan_id, self.kind
        self.started = self.clock()
        tools.publish(ScanStarted(library=tools.library_id, scan_id=scan_id, kind=kind))
        log.info("scan %s (%s) started", scan_id, kind)
        try:
            await asyncio.to_thread(self.cache.reload_if_changed)
            if self.pool_broken:
                tools.pool.replace(tools.pool.executor)
                self.pool_broken = False
            finished = await self._work(await self._walk())
            self._end("finished")
            tools.publish(
                ScanFinished(
                    library=tools.library_id,
                    scan_id=scan_id,
                    kind=kind,
                    groups=finished.groups,
                    total_wasted=finished.total_wasted,
                    stats=finished.stats,
                )
            )
            await self.results.save()
            log.info("scan %s finished: %s, %.2fs", scan_id, finished.summary, self.clock() - self.started)
        except asyncio.CancelledError:
            self._end("cancelled")
            raise
        except ScanCancelledError:
            self._end("cancelled")
            tools.publish(ScanCancelled(library=tools.library_id, scan_id=scan_id, kind=kind))
            log.info("scan %s cancelled", scan_id)
        except Exception as exc:
            self._fail(self._failure_message(exc))
        finally:
            await self.cache.save()

    def _failure_message(self, exc: Exception) -> str:
        """What `scan.failed` says about `exc` (and its log line)."""
        if isinstance(exc, ServiceUnavailable | ScanFailedError):
            message = exc.message if isinstance(exc, ServiceUnavailable) else str(exc)
            log.warning("scan %s failed: %s", self.scan_id, message)
            return message
        if isinstance(exc, BrokenProcessPool):
            self.pool_broken = True
            log.error("scan %s failed: a hash worker process died", self.scan_id)
            return "A hash worker process died; the workers restart with the next scan."
        log.error("scan %s failed", self.scan_id, exc_info=exc)
        return "The scan hit an unexpected error."

    def _fail(self, message: str) -> None:
        self._end("failed")
        self.tools.publish(
            ScanFailed(library=self.tools.library_id, scan_id=self.scan_id, kind=self.kind, message=message)
        )

    def _end(self, outcome: str) -> None:
        """Count the outcome and publish the last progress (a finished scan: "done", 100%)."""
        self.tools.counters.outcomes[outcome] += 1
        finished = outcome == "finished"
        p = self.progress
        p.running = False
        p.phase = "done" if finished else outcome
        if finished:
            p.percent = 100.0
        p.eta_s = 0.0 if finished else None
        self.emitter.emit(p, force=True)

    def _work_done(self) -> None:
        """After the workers: stop if cancelled meanwhile, or if the drive went away (files
        that vanished with their drive are not "gone")."""
        self._check_cancel()
        self.tools.library.check_available()

    # -- walking ------------------------------------------------------------------------

    async def _walk(self) -> list[hashing.PackedWalk]:
        """Every media file under the library's site/model folders, listed by the workers in
        parts (packed: `hashing.PackedWalk`), in the same order for the same folders."""
        library, pool = self.tools.library, self.tools.pool
        root = str(library.root)
        try:
            folders = await asyncio.to_thread(hashing.walk_roots, root)
        except OSError:
            library.check_available()
            raise ScanFailedError("The library folder could not be listed.") from None
        self._check_cancel()
        # a small library: one part per worker (each part costs a round trip); a big one: more,
        # so the workers finish together and the progress moves
        per_worker = min(WALK_PARTS_PER_WORKER, max(1, len(folders) // (WALK_FOLDERS_PER_PART * pool.workers)))
        chunk_count = max(1, min(len(folders), pool.workers * per_worker))  # a whole number per worker
        chunks = self._split(folders, chunk_count)
        loop = asyncio.get_running_loop()
        executor = pool.executor
        hash_small = self._walk_hashes_small()
        reuses = self._reuse(root, chunks)
        futures: list[asyncio.Future[hashing.PackedWalk]] = []
        counters = self.tools.counters
        for chunk, reuse in zip(chunks, reuses, strict=True):
            if reuse is None:
                futures.append(loop.run_in_executor(executor, hashing.walk_packed, root, chunk, hash_small))
                walked = len(chunk)
            elif reuse.again or list(reuse.last.folders) != chunk:
                futures.append(
                    loop.run_in_executor(executor, hashing.rewalk_packed, root, reuse.last, chunk, reuse.again)
                )
                walked = len(reuse.again)
            else:
                futures.append(loop.create_future())
                futures[-1].set_result(reuse.last)
                walked = -1
            counters.walked_parts += walked >= 0  # sent to a worker
            counters.kept_parts += walked < 0
            counters.walked_folders += max(walked, 0)
            counters.kept_folders += len(chunk) - max(walked, 0)
        found = 0
        try:
            for future in asyncio.as_completed(futures):
                found += (await future).count
                self.progress.files_found = found  # so far; links are told apart at the end
                self.emitter.emit(self.progress)
        except hashing.ScanCancelled:
            await asyncio.gather(*futures, return_exceptions=True)
            raise ScanCancelledError() from None
        self._check_cancel()
        # A drive unmounted during the walk would look like an empty library: fail instead.
        library.check_available()
        return [future.result() for future in futures]

    def _split(self, folders: list[str], count: int) -> list[list[str]]:
        """The folders in `count` parts: every `count`-th (sites spread over the workers)."""
        return [folders[i::count] for i in range(count)]

    def _reuse(self, root: str, chunks: list[list[str]]) -> list[Reuse | None]:
        """For each part to walk, what of the last walk still holds (None: walk it whole)."""
        return [None] * len(chunks)

    def _walk_hashes_small(self) -> bool:
        """Whether the walk hashes small files sharing a size (`hashing.walk_packed`)."""
        return False

    # -- the work phase: progress, batches in the workers, the cache ---------------------

    def _begin_work(self, total: int, bytes_total: int) -> None:
        """Enter the work phase: `total` files of `bytes_total` bytes to settle."""
        p = self.progress
        p.phase = self.work_phase
        p.checked = 0
        p.total = total
        p.bytes_total = bytes_total
        self._work_started = self.clock()
        self._last_cache_save = self.clock()
        self.emitter.emit(p, force=True)

    def _advance(self, settled: Settled) -> None:
        """Count settled files into the progress (percent: the walk is the first 5)."""
        p = self.progress
        p.checked += settled.files
        p.bytes_done += settled.nbytes
        p.cache_hits += settled.cache_hits
        p.hash_cache_hits += settled.hash_cache_hits
        p.percent = 5.0 + 95.0 * (p.bytes_done / p.bytes_total if p.bytes_total else 1.0)
        p.percent = min(p.percent, 99.99)
        elapsed = self.clock() - self._work_started
        if elapsed > 0 and p.bytes_done:
            p.rate = p.bytes_done / elapsed
            p.eta_s = (p.bytes_total - p.bytes_done) / p.rate
        self.emitter.emit(p)

    async def _in_workers(
        self,
        batches: Iterator[B],
        task: Callable[..., R],
        arguments: Callable[[B], tuple[Any, ...]],
        record: Callable[[B, R], None],
    ) -> None:
        """Run `task(*arguments(batch))` in the workers for every batch, at most
        IN_FLIGHT_PER_WORKER per worker in flight, and `record` each result in the event loop.

        A cancel (here or raised by a worker) stops sending batches; the ones in flight are
        awaited, then ScanCancelledError. A failed batch stops the scan the same way, then
        fails it (a dead worker: BrokenProcessPool, and the pool is replaced next scan).
        """
        pool = self.tools.pool
        loop = asyncio.get_running_loop()
        in_flight: dict[asyncio.Future[R], B] = {}
        cancelled = False
        failure: BaseException | None = None
        while True:
            while not cancelled and failure is None and len(in_flight) < IN_FLIGHT_PER_WORKER * pool.workers:
                batch = next(batches, None)
                if batch is None:
                    break
                in_flight[loop.run_in_executor(pool.executor, task, *arguments(batch))] = batch
            if not in_flight:
                break
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                batch = in_flight.pop(future)
                try:
                    result = future.result()
                except hashing.ScanCancelled:
                    cancelled = True
                    continue
                except Exception as exc:
                    failure = exc
                    continue
                record(batch, result)
            cancelled = cancelled or self.cancel_requested
            await self._maybe_save_cache()
        if isinstance(failure, BrokenProcessPool):
            raise failure
        if failure is not None:
            self.tools.library.check_available()  # the drive went away: say so, not "a worker failed"
            log.error("scan: a hash worker failed: %r", failure)
            raise ScanFailedError("A hash worker failed; the scan stopped.")
        if cancelled:
            raise ScanCancelledError()

    def _batched(
        self,
        items: list[Item],
        weigh: Callable[[Item], tuple[int, int]],
        *,
        min_files: int = MIN_BATCH_FILES,
        max_files: int = BATCH_FILES,
    ) -> Iterator[list[Item]]:
        """`items` in batches (`weigh(item)`: its bytes and files) of at most the configured bytes
        and files (and `max_files`), yet small enough that every worker gets several batches (a
        small library's few batches would leave a worker idle), down to MIN_BATCH_BYTES and
        `min_files`."""
        slices = BATCHES_PER_WORKER * self.tools.pool.workers
        weights = [weigh(item) for item in items]
        nbytes = sum(item_bytes for item_bytes, _files in weights)
        files = sum(item_files for _bytes, item_files in weights)
        return batches(
            items,
            weigh,
            min(self.batch_bytes, max(MIN_BATCH_BYTES, nbytes // slices)),
            min(self.batch_files, max_files, max(min_files, files // slices)),
        )

    async def _maybe_save_cache(self) -> None:
        if self.clock() - self._last_cache_save >= CACHE_SAVE_INTERVAL_S and self.cache.dirty:
            self._last_cache_save = self.clock()
            await self.cache.save()


def batches(
    items: Iterable[Item], weigh: Callable[[Item], tuple[int, int]], max_bytes: int, max_files: int
) -> Iterator[list[Item]]:
    """Whole items packed in order into batches of about `max_bytes` or `max_files`;
    `weigh(item)` is its (bytes, files)."""
    batch: list[Item] = []
    nbytes = nfiles = 0
    for item in items:
        item_bytes, item_files = weigh(item)
        if batch and (nbytes + item_bytes > max_bytes or nfiles + item_files > max_files):
            yield batch
            batch, nbytes, nfiles = [], 0, 0
        batch.append(item)
        nbytes += item_bytes
        nfiles += item_files
    if batch:
        yield batch


class ExactScanRun(ScanRun):
    """The duplicate scan: byte-identical files, by size then by content hashes."""

    kind = "exact"
    work_phase = "hashing"
    cache: HashCache
    results: ResultsStore
    _stamps: list[list[int | None]] | None = None  # this walk's folders' stamps, per part (`_reuse`)

    def _walk_hashes_small(self) -> bool:
        # Only when the cache knows nothing (a first scan): else the walk would read again
        # files whose hashes the cache holds.
        return len(self.cache) == 0

    def _split(self, folders: list[str], count: int) -> list[list[str]]:
        """The last walk's parts again, less the folders gone, each new folder in the part that
        has the fewest (a new model folder shifted every later folder of a fresh split into
        another part: nothing could be reused); a fresh split without a last walk of `count`
        parts, or once a part holds a quarter more than its share."""
        last = self.results.last_walk
        if last is None or len(last.parts) != count or not folders:
            return super()._split(folders, count)
        present = set(folders)
        chunks = [[folder for folder in part.folders if folder in present] for part in last.parts]
        placed = set(chain.from_iterable(chunks))
        for folder in folders:
            if folder not in placed:
                min(chunks, key=len).append(folder)
        share = -(-len(folders) // count)
        if max(map(len, chunks)) > share + max(1, share // 4):
            return super()._split(folders, count)
        return chunks

    def _reuse(self, root: str, chunks: list[list[str]]) -> list[Reuse | None]:
        """Take a folder's entries from the last walk when it is in the same part as then (see
        `_split`), was plain (no sub-folder or symbolic link: `hashing.WalkShape`) and its inotify stamp,
        taken before it was walked, still holds: nothing was created, written, truncated,
        touched, renamed or deleted in it since (the kernel queues the event before the
        changing call returns, and `refresh` reads the queue first). A file with a second hard
        link is changed through any of its names and told to that name's folder only: its
        folder is taken only if the last walk found all the file's names, each in a folder that
        vouches so (a new name made in a watched folder moves every stamp: `FolderEvents`).
        The other folders (and folders new to the part) are walked (a part whose folders all
        hold is kept whole, one none of whose do is walked whole). Then stamp every folder
        again, before any walking, for the next scan (`LastWalk.stamps`)."""
        events, last = self.tools.events, self.results.last_walk
        self._stamps = None
        folders = sum(len(chunk) for chunk in chunks)
        if events is None or folders > events.max_folders // 2:  # would crowd out the downloads' watches
            return [None] * len(chunks)
        events.refresh()
        reuses: list[Reuse | None] = [None] * len(chunks)
        if last is not None and last.stamps is not None and len(last.parts) == len(chunks):
            vouched = _vouched_folders(events, root, last.parts, last.stamps)
            names = _names_of_linked_files(last.parts)
            for index, (part, chunk) in enumerate(zip(last.parts, chunks, strict=True)):
                holds = list(vouched[index])
                for folder, device, inode, count in part.linked:
                    where = names[device, inode]
                    if len(where) != count or not all(vouched[other][at] for other, at in where):
                        holds[folder] = False
                held = {name for name, holding in zip(part.folders, holds, strict=True) if holding}
                again = [at for at, folder in enumerate(chunk) if folder not in held]
                if len(again) < len(chunk):
                    reuses[index] = Reuse(part, again)
        paths = [[os.path.join(root, folder) for folder in chunk] for chunk in chunks]
        self._stamps = [[events.stamp(path) for path in chunk_paths] for chunk_paths in paths]
        return reuses

    async def _work(self, parts: list[hashing.PackedWalk]) -> Finished:
        digests = [part.digest for part in parts]
        last = self.results.last_walk
        if last is not None and last.cache_generation != self.cache.generation:
            last = None  # the cache changed since: what it held then is not what it holds now
        if last is not None and last.digests == digests:
            return self._unchanged(last)
        # with nothing in the cache yet, all it will hold are this walk's files: no paths to retain
        retain = len(self.cache) > 0
        walk, changed = await asyncio.to_thread(self._summarize, parts, last, retain)  # big libraries: off the loop
        self.progress.files_found = walk.files  # the finished stats' `files`, from here on
        walked = self.clock()
        tally = Tally()
        small_hashes: dict[str, str] = {}
        for part in parts:  # hashed in the walk: computed in this scan, not from the cache
            small_hashes.update(part.small_hashes)
            self._count_read(part.work.bytes_read, tally)  # the hashes are counted when used
        carried, kept = (Settled(), []) if last is None else self._keep_unchanged(last, changed, tally)
        compared, compared_bytes = walk.compared()
        self._begin_work(total=compared + carried.files, bytes_total=compared_bytes + carried.nbytes)
        self._advance(carried)
        await self._hash(walk.groups, small_hashes, tally)
        hashed = self.clock()
        self._work_done()
        duration = self.clock() - self.started
        document = await asyncio.to_thread(self.results.build, self.scan_id, walk, tally, duration, kept)
        self.results.document = document
        if walk.paths is None:  # told as changes, or a cache empty before: it knew no other paths
            self.cache.forget(walk.gone)
        else:
            self.cache.retain(walk.paths)  # files gone from the library leave the cache too
        self.results.last_walk = None
        if not tally.unreadable:
            self.results.last_walk = LastWalk(
                [replace(part, small_hashes={}) for part in parts],
                self.cache.generation,
                document,
                files=walk.files,
                nbytes=walk.bytes,
                by_size=tally.by_size,
                stamps=self._stamps,
            )
        log.info(
            "scan %s: walk %.3fs, hashing %.3fs (%d of %d same-size groups), results %.3fs",
            self.scan_id,
            walked - self.started,
            hashed - walked,
            len(walk.groups),
            len(tally.by_size),
            self.clock() - hashed,
        )
        return Finished.of(document, walk.files, f"{tally.hashed_bytes} hashed bytes")

    @staticmethod
    def _summarize(
        parts: list[hashing.PackedWalk], last: LastWalk | None, with_paths: bool
    ) -> tuple[WalkResult, set[int]]:
        """The walk's same-size groups; given the last walk, told as changes since (the groups
        of the sizes whose files changed, returned too: every other group is the last scan's).
        Blocking; in a thread."""
        if last is None:
            return summarize_parts(parts, with_paths=with_paths), set()
        return walk_changes(last, parts)

    @staticmethod
    def _keep_unchanged(last: LastWalk, changed: set[int], tally: Tally) -> tuple[Settled, list[Document]]:
        """Carry the last scan's groups of the sizes in which no file changed into this scan:
        their figures (every hash as if from the cache, none read; also returned, for the
        progress) and their document groups."""
        settled = Settled()
        for size, (files, needed) in last.by_size.items():
            if size in changed:
                continue
            tally.by_size[size] = (files, needed)
            tally.needed += needed
            tally.files_compared += files
            tally.file_cache_hits += files
            settled.add(Settled(files, size * files, files, needed))
        return settled, [group for group in last.document["groups"] if group["size"] not in changed]

    def _unchanged(self, last: LastWalk) -> Finished:
        """A rescan whose walk is the last scan's: its results carried over, nothing grouped,
        looked up or hashed (the progress tells every file settled from the cache)."""
        self.progress.files_found = last.files
        self._begin_work(total=last.compared, bytes_total=last.compared_bytes)
        self._advance(Settled(last.compared, last.compared_bytes, last.compared, last.needed))
        self._work_done()
        document = self.results.carry_over(self.scan_id, last, self.clock() - self.started)
        self.results.document = document
        self.results.last_walk = replace(last, document=document, stamps=self._stamps)
        log.info("scan %s: the library is unchanged since the last scan; its results carried over", self.scan_id)
        return Finished.of(document, last.files, "unchanged")

    async def _hash(self, groups: list[tuple[int, list[FileInfo]]], small_hashes: dict[str, str], tally: Tally) -> None:
        """Settle every group: the groups that need reading go to the workers first, and the
        ones the hash cache and the walk's hashes settle are recorded while the workers read."""
        known, walked, pending = await self._resolve_known(groups, small_hashes, tally)
        root = str(self.tools.library.root)

        def weigh(group: tuple[int, list[FileInfo], list[hashing.Member], list[hashing.Member]]) -> tuple[int, int]:
            return group[0] * len(group[1]), len(group[1])

        def arguments(batch: Batch) -> tuple[Any, ...]:
            return root, [(size, given) for size, _members, _known, given in batch]

        def record(batch: Batch, result: tuple[Sequence[Sequence[hashing.Outcome]], hashing.Work]) -> None:
            outcome_lists, work = result
            tally.computed += work.computed
            self._count_read(work.bytes_read, tally)
            resolved = zip(batch, outcome_lists, strict=True)
            self._advance(self._record_groups([(*group[:3], outcomes) for group, outcomes in resolved], tally))

        reading = asyncio.ensure_future(
            self._in_workers(self._batched(pending, weigh), hashing.hash_groups, arguments, record)
        )
        try:
            for start in range(0, len(walked), YIELD_EVERY_GROUPS):
                await asyncio.sleep(0)  # first `reading` sends batches; then requests get through
                self._advance(self._record_walked(walked[start : start + YIELD_EVERY_GROUPS], tally))
            for start in range(0, len(known), YIELD_EVERY_GROUPS):
                await asyncio.sleep(0)
                self._advance(self._record_groups(known[start : start + YIELD_EVERY_GROUPS], tally))
        except BaseException:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            raise
        await reading

    async def _resolve_known(
        self, groups: list[tuple[int, list[FileInfo]]], small_hashes: dict[str, str], tally: Tally
    ) -> tuple[list[Resolved], list[SettledByWalk], Batch]:
        """The groups the hash cache (and the hashes the walk made) settle, with their outcomes;
        those of a first scan the walk's hashes settle alone, with the hashes (the cache knew
        none of their files: nothing to look up, compare or keep); and the ones the workers
        must read."""
        resolved: list[Resolved] = []
        by_walk: list[SettledByWalk] = []
        pending: Batch = []
        cache_empty = not len(self.cache)
        for count, (size, members) in enumerate(groups):
            if count % YIELD_EVERY_GROUPS == YIELD_EVERY_GROUPS - 1:
                await asyncio.sleep(0)  # a library of millions: let requests through meanwhile
            if cache_empty and small_hashes and size <= hashing.SMALL_FILE:
                fulls = list(map(small_hashes.get, map(_path_of, members)))
                if None not in fulls:
                    by_walk.append((size, members, cast(list[str], fulls)))
                    tally.computed += len(members)  # computed by the walk
                    continue
            known = self.cache.members(members)
            given = known
            if small_hashes and size <= hashing.SMALL_FILE:
                given = []
                for path, partial, full in known:
                    if full is None and (walked := small_hashes.get(path)) is not None:
                        full = walked
                        tally.computed += 1  # computed by the walk (a file it hashed twice, once)
                    given.append((path, partial, full))
            try:
                resolved.append((size, members, known, hashing.resolve_group(size, given, None)))
            except hashing.NeedsWork:
                pending.append((size, members, known, given))
        return resolved, by_walk, pending

    def _record_walked(self, groups: Iterable[SettledByWalk], tally: Tally) -> Settled:
        """Record groups the walk's hashes settled in a first scan (`_record`'s outcome for
        files that each needed one hash, computed now): no cache hit, every hash learnt."""
        recorded = Settled()
        for size, members, fulls in groups:
            self.cache.store_computed(members, fulls)
            self._count(size, len(members), members, fulls, len(members), 0, tally)
            recorded.files += len(members)
            recorded.nbytes += size * len(members)
        return recorded

    def _record_groups(self, groups: Iterable[Resolved], tally: Tally) -> Settled:
        """Record settled groups (`_record`); returns what they add to the progress."""
        recorded = Settled()
        for size, members, known, outcomes in groups:
            recorded.add(self._record(size, members, known, outcomes, tally))
            recorded.files += len(members)
            recorded.nbytes += size * len(members)
        return recorded

    def _count_read(self, nbytes: int, tally: Tally) -> None:
        tally.hashed_bytes += nbytes
        self.tools.counters.hashed_bytes += nbytes

    def _record(
        self,
        size: int,
        members: list[FileInfo],
        known: list[hashing.Member],
        outcomes: Sequence[hashing.Outcome],
        tally: Tally,
    ) -> Settled:
        """Store a settled group's hashes and add its duplicate groups to the tally (a size's
        files are settled together, so its groups are whole); returns its cache hits, in files
        and in hashes.

        A hash that was known beforehand came from the hash cache (the workers never recompute
        a known hash); a file is a cache hit when every hash it needed was known.
        """
        learnt: list[Learnt] = []
        hashed: list[FileInfo] = []
        fulls: list[str] = []
        needed, cached_hashes, cache_hits, unreadable = 0, 0, 0, 0
        for info, member, (partial, full) in zip(members, known, outcomes, strict=True):
            if full is None:
                if partial is None:
                    unreadable += 1  # compared, nothing learnt
                    continue
                used, cached = 1, int(member[1] is not None)
            else:
                hashed.append(info)
                fulls.append(full)
                if partial is None:
                    used, cached = 1, int(member[2] is not None)
                else:
                    used, cached = 2, (member[1] is not None) + (member[2] is not None)
            needed += used
            cached_hashes += cached
            if cached == used:
                cache_hits += 1  # all from the cache: nothing new to store (a rescan: every file)
            else:
                learnt.append((info, member, partial, full))
        self.cache.store_many(learnt)
        self._count(size, len(members), hashed, fulls, needed, cache_hits, tally)
        tally.unreadable += unreadable
        return Settled(cache_hits=cache_hits, hash_cache_hits=cached_hashes)

    @staticmethod
    def _count(
        size: int,
        files: int,
        hashed: Sequence[FileInfo],
        fulls: Sequence[str],
        needed: int,
        cache_hits: int,
        tally: Tally,
    ) -> None:
        """Add a settled size to the tally: its `files` compared, the `hashed` ones' duplicate
        groups (`fulls[i]` is `hashed[i]`'s full hash), the hashes it `needed` and its cache hits."""
        tally.groups += [duplicate_group(digest, size, same) for digest, same in same_hashes(hashed, fulls)]
        tally.by_size[size] = (files, needed)
        tally.needed += needed
        tally.files_compared += files
        tally.file_cache_hits += cache_hits


def same_hashes(files: Sequence[FileInfo], fulls: Sequence[str]) -> list[tuple[str, list[FileInfo]]]:
    """The files sharing a full hash (`fulls[i]` is `files[i]`'s), by hash in the order each
    first appears: one count in C, and lists only for the hashes that repeat."""
    counts = Counter(fulls)
    if len(counts) == len(fulls):
        return []
    by_hash: dict[str, list[FileInfo]] = {}
    for info, full in zip(files, fulls, strict=True):
        if counts[full] > 1:
            by_hash.setdefault(full, []).append(info)
    return list(by_hash.items())


def _vouched_folders(
    events: FolderEvents, root: str, parts: Sequence[hashing.PackedWalk], stamps: Sequence[Sequence[int | None]]
) -> list[list[bool]]:
    """Per part of the last walk, per folder: it was plain, and its stamp (taken before it was
    walked) still holds."""
    return [
        [
            stamp is not None and at not in part.odd and events.still(os.path.join(root, folder), stamp)
            for at, (folder, stamp) in enumerate(zip(part.folders, part_stamps, strict=True))
        ]
        for part, part_stamps in zip(parts, stamps, strict=True)
    ]


def _names_of_linked_files(parts: Sequence[hashing.PackedWalk]) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Where the walk found each name of its files with a second hard link: (part, folder)."""
    names: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for index, part in enumerate(parts):
        for folder, device, inode, _count in part.linked:
            names.setdefault((device, inode), []).append((index, folder))
    return names
