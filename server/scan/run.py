"""One duplicate scan run: walk, hash, live progress, and the one place its outcome is told.

`ScanRun.run()` walks the library in the workers, groups files by size in the event loop
thread (cheap), settles from the hash cache what it can and sends the remaining same-size
groups to the workers in batches, never more than two per worker in flight. It updates the
shared `Progress` (server.scan.progress: published at most ~10 times a second, and at each
phase change), saves what the hash cache learnt now and then and on the way out, and ends with
exactly one of `scan.finished` (after building and saving the results), `scan.cancelled` or
`scan.failed` (one `_fail(message)` path, whatever failed). The cluster lock and starting,
cancelling and mirroring scans are `ScanService`'s (server.scan.service). Pure: no aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as CancelEvent
from typing import Any

from server.errors import ServiceUnavailable
from server.infra.events import ScanCancelled, ScanFailed, ScanFinished, ScanStarted
from server.infra.pools import WorkerPool
from server.library import Library
from server.scan import hashing
from server.scan.hashcache import HashCache
from server.scan.progress import Clock, Progress, ProgressEmitter, Publish
from server.scan.results import FileInfo, ResultsStore, Tally, WalkResult, summarize_walk

log = logging.getLogger("archive_catalog")

BATCH_BYTES = 64 * 1024 * 1024
BATCH_FILES = 2048
BATCHES_PER_WORKER = 4  # work is split at least this finely, so the workers finish together
MIN_BATCH_BYTES = 4 * 1024 * 1024
MIN_BATCH_FILES = 64
WALK_CHUNKS_PER_WORKER = 2  # with 2 batches per worker in flight, like the hashing
CACHE_SAVE_INTERVAL_S = 30.0

Batch = list[tuple[int, list[FileInfo], list[hashing.Member]]]


@dataclass(slots=True)
class ScanCounters:
    """Across scans, for /metrics: how scans ended here, and the bytes the workers hashed."""

    outcomes: dict[str, int] = field(default_factory=lambda: {"finished": 0, "cancelled": 0, "failed": 0})
    hashed_bytes: int = 0


@dataclass(slots=True)
class ScanTools:
    """What every run works with; the service builds it once."""

    library: Library
    library_id: str
    pool: WorkerPool
    cache: HashCache
    results: ResultsStore
    publish: Publish
    counters: ScanCounters
    cancel_flag: CancelEvent  # shared with the workers


@dataclass(slots=True)
class _Settled:
    """What settling some groups adds to the progress: files, bytes and the cache's part."""

    files: int = 0
    nbytes: int = 0
    cache_hits: int = 0  # files whose hashes all came from the hash cache
    hash_cache_hits: int = 0

    def add(self, other: _Settled) -> None:
        self.files += other.files
        self.nbytes += other.nbytes
        self.cache_hits += other.cache_hits
        self.hash_cache_hits += other.hash_cache_hits


class ScanCancelledError(Exception):
    pass


class ScanFailedError(Exception):
    pass


class ScanRun:
    """One scan, from `scan.started` to its outcome; `cancel()` stops it at the next check."""

    def __init__(
        self,
        scan_id: str,
        tools: ScanTools,
        progress: Progress,
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
        self.clock = clock
        self.batch_bytes = batch_bytes
        self.batch_files = batch_files
        self.pool_broken = restart_pool  # the pool is replaced first; a dead worker sets it again
        self.emitter = ProgressEmitter(tools.publish, tools.library_id, clock, progress_interval_s)
        self.cancel_requested = False
        self._hash_started = 0.0
        self._last_cache_save = 0.0
        tools.cancel_flag.clear()  # a new run: the workers' flag starts clear

    def cancel(self) -> None:
        self.cancel_requested = True
        self.tools.cancel_flag.set()

    def _check_cancel(self) -> None:
        if self.cancel_requested:
            raise ScanCancelledError()

    # -- the outcome --------------------------------------------------------------------

    async def run(self) -> None:
        tools, scan_id = self.tools, self.scan_id
        started = self.clock()
        tools.publish(ScanStarted(library=tools.library_id, scan_id=scan_id))
        log.info("scan %s started", scan_id)
        try:
            await asyncio.to_thread(tools.cache.reload_if_changed)
            if self.pool_broken:
                tools.pool.replace(tools.pool.executor)
                self.pool_broken = False
            walk = await self._walk()
            walked = self.clock()
            tally = Tally()
            await self._hash(walk.groups, tally)
            hashed = self.clock()
            self._check_cancel()
            tools.library.check_available()  # files that vanished with their drive are not "gone"
            duration = self.clock() - started
            document = await asyncio.to_thread(tools.results.build, scan_id, walk, tally, duration)
            tools.results.document = document
            tools.cache.retain(walk.paths)  # files gone from the library leave the cache too
            log.info(
                "scan %s: walk %.3fs, hashing %.3fs, results %.3fs",
                scan_id,
                walked - started,
                hashed - walked,
                self.clock() - hashed,
            )
            self._end("finished")
            tools.publish(
                ScanFinished(
                    library=tools.library_id,
                    scan_id=scan_id,
                    groups=len(document["groups"]),
                    total_wasted=document["total_wasted"],
                    stats=document["stats"],
                )
            )
            await tools.results.save()
            log.info(
                "scan %s finished: %d files, %d groups, %d hashed bytes, %.2fs",
                scan_id,
                walk.files,
                len(document["groups"]),
                tally.hashed_bytes,
                duration,
            )
        except asyncio.CancelledError:
            self._end("cancelled")
            raise
        except ScanCancelledError:
            self._end("cancelled")
            tools.publish(ScanCancelled(library=tools.library_id, scan_id=scan_id))
            log.info("scan %s cancelled", scan_id)
        except Exception as exc:
            self._fail(self._failure_message(exc))
        finally:
            await tools.cache.save()

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
        self.tools.publish(ScanFailed(library=self.tools.library_id, scan_id=self.scan_id, message=message))

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

    # -- walking ------------------------------------------------------------------------

    async def _walk(self) -> WalkResult:
        library, pool = self.tools.library, self.tools.pool
        root = str(library.root)
        try:
            folders = await asyncio.to_thread(hashing.walk_roots, root)
        except OSError:
            library.check_available()
            raise ScanFailedError("The library folder could not be listed.") from None
        self._check_cancel()
        chunk_count = max(1, min(len(folders), pool.workers * WALK_CHUNKS_PER_WORKER))
        chunks = [folders[i::chunk_count] for i in range(chunk_count)]
        loop = asyncio.get_running_loop()
        executor = pool.executor
        futures = [loop.run_in_executor(executor, hashing.walk_folders, root, chunk) for chunk in chunks if chunk]
        entries: list[hashing.WalkEntry] = []
        try:
            for future in asyncio.as_completed(futures):
                found = await future
                entries.extend(found)
                self.progress.files_found = len(entries)  # so far; links are told apart at the end
                self.emitter.emit(self.progress)
        except hashing.ScanCancelled:
            await asyncio.gather(*futures, return_exceptions=True)
            raise ScanCancelledError() from None
        self._check_cancel()
        # A drive unmounted during the walk would look like an empty library: fail instead.
        library.check_available()
        walk = await asyncio.to_thread(summarize_walk, entries)  # big libraries: off the loop
        self.progress.files_found = walk.files  # the finished stats' `files`, from here on
        return walk

    # -- hashing ------------------------------------------------------------------------

    async def _hash(self, groups: list[tuple[int, list[FileInfo]]], tally: Tally) -> None:
        p = self.progress
        p.phase = "hashing"
        p.checked = 0
        p.total = sum(len(members) for _size, members in groups)
        p.bytes_total = sum(size * len(members) for size, members in groups)
        self._hash_started = self.clock()
        self._last_cache_save = self.clock()
        self.emitter.emit(p, force=True)
        pending = await self._settle_from_cache(groups, tally)
        batches = iter(_batches(pending, *self._batch_limits(pending)))
        root = str(self.tools.library.root)
        pool = self.tools.pool
        loop = asyncio.get_running_loop()
        in_flight: dict[asyncio.Future[Any], Batch] = {}
        cancelled = False
        failure: BaseException | None = None
        while True:
            while not cancelled and failure is None and len(in_flight) < 2 * pool.workers:
                batch = next(batches, None)
                if batch is None:
                    break
                payload = [(size, known) for size, _members, known in batch]
                in_flight[loop.run_in_executor(pool.executor, hashing.hash_groups, root, payload)] = batch
            if not in_flight:
                break
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                batch = in_flight.pop(future)
                try:
                    outcome_lists, work = future.result()
                except hashing.ScanCancelled:
                    cancelled = True
                    continue
                except Exception as exc:
                    failure = exc
                    continue
                self._record_batch(batch, outcome_lists, work, tally)
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

    def _batch_limits(self, pending: Batch) -> tuple[int, int]:
        """Bytes and files per batch: at most the configured ones, and small enough that every
        worker gets several batches (a small library's few batches would leave a worker idle)."""
        slices = BATCHES_PER_WORKER * self.tools.pool.workers
        files = sum(len(members) for _size, members, _known in pending)
        nbytes = sum(size * len(members) for size, members, _known in pending)
        return (
            min(self.batch_bytes, max(MIN_BATCH_BYTES, nbytes // slices)),
            min(self.batch_files, max(MIN_BATCH_FILES, files // slices)),
        )

    async def _settle_from_cache(self, groups: list[tuple[int, list[FileInfo]]], tally: Tally) -> Batch:
        """Settle the groups the hash cache can; returns the ones the workers must read."""
        pending: Batch = []
        settled = _Settled()
        for count, (size, members) in enumerate(groups):
            if count % 2000 == 1999:
                await asyncio.sleep(0)  # a library of millions: let requests through meanwhile
            known = self._known_hashes(members)
            try:
                outcomes = hashing.resolve_group(size, known, None)
            except hashing.NeedsWork:
                pending.append((size, members, known))
                continue
            settled.add(self._record(size, members, known, outcomes, tally))
            settled.files += len(members)
            settled.nbytes += size * len(members)
        self._update_hash_progress(settled)
        return pending

    def _record_batch(
        self, batch: Batch, outcome_lists: Sequence[Sequence[hashing.Outcome]], work: hashing.Work, tally: Tally
    ) -> None:
        tally.hashed_bytes += work.bytes_read
        self.tools.counters.hashed_bytes += work.bytes_read
        recorded = _Settled()
        for (size, members, known), outcomes in zip(batch, outcome_lists, strict=True):
            recorded.add(self._record(size, members, known, outcomes, tally))
            recorded.files += len(members)
            recorded.nbytes += size * len(members)
        tally.computed += work.computed
        self._update_hash_progress(recorded)

    def _known_hashes(self, members: list[FileInfo]) -> list[hashing.Member]:
        known: list[hashing.Member] = []
        for info in members:
            entry = self.tools.cache.lookup(info.path, info.size, info.mtime_ns, info.inode)
            known.append((info.path, entry.partial, entry.full) if entry else (info.path, None, None))
        return known

    def _record(
        self,
        size: int,
        members: list[FileInfo],
        known: list[hashing.Member],
        outcomes: Sequence[hashing.Outcome],
        tally: Tally,
    ) -> _Settled:
        """Store a settled group's hashes; returns its cache hits, in files and in hashes.

        A hash that was known beforehand came from the hash cache (the workers never recompute
        a known hash); a file is a cache hit when every hash it needed was known.
        """
        hits = _Settled()
        for info, (_path, known_partial, known_full), (partial, full) in zip(members, known, outcomes, strict=True):
            used = (partial is not None) + (full is not None)
            cached = (partial is not None and known_partial is not None) + (full is not None and known_full is not None)
            tally.needed += used
            tally.files_compared += 1
            hits.hash_cache_hits += cached
            if used and cached == used:
                hits.cache_hits += 1
                tally.file_cache_hits += 1
            if used:
                self.tools.cache.store(info.path, info.size, info.mtime_ns, info.inode, partial, full)
            if full is not None:
                tally.hashes[info.path] = (size, full)
        return hits

    def _update_hash_progress(self, settled: _Settled) -> None:
        p = self.progress
        p.checked += settled.files
        p.bytes_done += settled.nbytes
        p.cache_hits += settled.cache_hits
        p.hash_cache_hits += settled.hash_cache_hits
        p.percent = 5.0 + 95.0 * (p.bytes_done / p.bytes_total if p.bytes_total else 1.0)
        p.percent = min(p.percent, 99.99)
        elapsed = self.clock() - self._hash_started
        if elapsed > 0 and p.bytes_done:
            p.rate = p.bytes_done / elapsed
            p.eta_s = (p.bytes_total - p.bytes_done) / p.rate
        self.emitter.emit(p)

    async def _maybe_save_cache(self) -> None:
        if self.clock() - self._last_cache_save >= CACHE_SAVE_INTERVAL_S and self.tools.cache.dirty:
            self._last_cache_save = self.clock()
            await self.tools.cache.save()


def _batches(groups: Batch, max_bytes: int, max_files: int) -> Iterator[Batch]:
    """Whole groups packed into batches of about `max_bytes` or `max_files`."""
    batch: Batch = []
    nbytes = nfiles = 0
    for group in groups:
        size, members, _known = group
        if batch and (nbytes + size * len(members) > max_bytes or nfiles + len(members) > max_files):
            yield batch
            batch, nbytes, nfiles = [], 0, 0
        batch.append(group)
        nbytes += size * len(members)
        nfiles += len(members)
    if batch:
        yield batch
