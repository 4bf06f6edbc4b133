"""The duplicate scan service: one scan at a time, its live progress, its results, clean-up.

Owns the worker pool (explicit `forkserver` context, warmed at start, shut down at the end),
the hash cache and the last results (both persisted in the cache dir). A scan walks the
library in the workers, groups files by size in the event loop thread (cheap), settles from
the hash cache what it can and sends the remaining same-size groups to the workers in
batches, never more than two per worker in flight. Events (`scan.started`, throttled
`scan.progress`, `scan.finished` / `scan.failed` / `scan.cancelled`, and `library.changed`
after a duplicate delete) go to the event bus, which the WebSocket hub fans out (and the
Redis relay, when instances share Redis; then a `ScanLock` keeps one scan per library across
them, and other instances' scan events are mirrored into `snapshot()`).
Pure domain code: no aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as CancelEvent
from pathlib import Path
from typing import Any, Protocol

import blake3
import orjson

from server.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from server.infra.atomic import write_atomically
from server.infra.cluster import RedisUnavailable
from server.infra.events import (
    Event,
    LibraryChanged,
    ScanCancelled,
    ScanCancelRequest,
    ScanEvent,
    ScanFailed,
    ScanFinished,
    ScanProgress,
    ScanStarted,
)
from server.infra.pools import WorkerPool
from server.library import Library, natural_key
from server.scan import hashing
from server.scan.hashcache import HashCache
from server.trash import Trash

log = logging.getLogger("archive_catalog")

PROGRESS_INTERVAL_S = 0.1  # at most ~10 progress events per second
BATCH_BYTES = 64 * 1024 * 1024
BATCH_FILES = 2048
WALK_CHUNKS_PER_WORKER = 2  # with 2 batches per worker in flight, like the hashing
CACHE_SAVE_INTERVAL_S = 30.0
RESULTS_FILE = "duplicates.json"
COMPARE_CHUNK = 1024 * 1024

Publish = Callable[[Event], None]
REMOTE_STALE_S = 30.0  # a remote scan silent this long is no longer shown as running


class ScanLock(Protocol):
    """The cluster-wide scan lock (server.infra.cluster.ClusterLock), when instances share Redis."""

    ttl_ms: int

    async def acquire(self) -> bool: ...
    async def renew(self) -> bool: ...
    async def release(self) -> None: ...


@dataclass(slots=True)
class FileInfo:
    path: str
    size: int
    mtime_ns: int
    inode: int


@dataclass(slots=True)
class Progress:
    running: bool = False
    scan_id: str | None = None
    phase: str = "idle"
    checked: int = 0
    total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    percent: float = 0.0
    cache_hits: int = 0
    started_at: float | None = None
    eta_s: float | None = None
    rate: float | None = None  # bytes per second hashed by the workers

    def to_json(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "scan_id": self.scan_id,
            "phase": self.phase,
            "checked": self.checked,
            "total": self.total,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "percent": round(self.percent, 2),
            "cache_hits": self.cache_hits,
            "started_at": self.started_at,
            "eta_s": None if self.eta_s is None else round(self.eta_s, 2),
            "rate": None if self.rate is None else round(self.rate),
        }


@dataclass(slots=True)
class _Tally:
    needed: int = 0
    computed: int = 0
    hashed_bytes: int = 0
    hashes: dict[str, tuple[int, str]] = field(default_factory=dict)  # path -> (size, full hash)


class ScanCancelledError(Exception):
    pass


class ScanFailedError(Exception):
    pass


class ScanService:
    def __init__(
        self,
        library: Library,
        trash: Trash,
        cache_dir: Path,
        publish: Publish,
        pool: WorkerPool,
        cancel_flag: CancelEvent,
        *,
        lock: ScanLock | None = None,
        clock: Callable[[], float] = time.monotonic,
        progress_interval_s: float = PROGRESS_INTERVAL_S,
    ) -> None:
        self.library = library
        self.trash = trash
        self.cache = HashCache(cache_dir)
        self.results_path = cache_dir / RESULTS_FILE
        self.publish = publish
        self.pool = pool
        self.workers = pool.workers
        self.clock = clock
        self.progress_interval_s = progress_interval_s
        self.batch_bytes = BATCH_BYTES
        self.batch_files = BATCH_FILES
        self.progress = Progress()
        self.results: dict[str, Any] | None = None
        self._pool_broken = False
        self.lock = lock
        self.library_id = self.library_id_of(library)
        self._remote: dict[str, Any] | None = None  # progress of a scan on another instance
        self._remote_seen = 0.0
        self._results_mtime_ns = 0
        self.outcomes = {"finished": 0, "cancelled": 0, "failed": 0}  # scans ended here, for /metrics
        self.hashed_bytes_total = 0
        self._cancel_event = cancel_flag
        self._tasks: set[asyncio.Task[None]] = set()
        self._cancel_requested = False
        self._last_emit = float("-inf")
        self._hash_started = 0.0
        self._last_cache_save = 0.0
        self._natural_keys: dict[str, NaturalKey] = {}  # of the last results' paths (rescans reuse them)

    @staticmethod
    def library_id_of(library: Library) -> str:
        """The id instances sharing a library agree on (its scan lock and events carry it)."""
        return blake3.blake3(str(library.root).encode()).hexdigest(8)

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        """Load the hash cache and last results, start and warm the worker pool."""
        entries = await asyncio.to_thread(self.cache.load)
        self.results = await asyncio.to_thread(self._load_results)
        await self.pool.start()
        self._pool_broken = False
        log.info("scan: %d hash workers ready, %d cached hashes", self.workers, entries)

    async def close(self) -> None:
        """Stop a running scan, save what the hash cache learnt, shut the workers down."""
        if self.running:
            self._request_cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.cache.dirty:
            await asyncio.to_thread(self.cache.save)
        await self.pool.close()

    # -- control ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.progress.running

    async def start(self) -> str:
        """Start a scan; 409 if one runs (here or on another instance), 503 if the root is missing."""
        if self.running or self._remote_running():
            raise Conflict("A duplicate scan is already running.", code="scan_running")
        if not self.pool.running:
            raise ServiceUnavailable("The hash workers are not running.", code="scan_unavailable")
        self.library.check_available()
        scan_id = secrets.token_hex(8)
        previous = self.progress
        self.progress = Progress(running=True, scan_id=scan_id, phase="walking", started_at=time.time())
        if self.lock is not None:
            try:
                acquired = await self.lock.acquire()
            except RedisUnavailable:
                acquired = True
                log.warning("scan: Redis is down; only this instance is kept from scanning twice")
            if not acquired:
                self.progress = previous
                raise Conflict("A duplicate scan is already running on another instance.", code="scan_running")
        self._cancel_requested = False
        self._cancel_event.clear()
        self._last_emit = float("-inf")
        task = asyncio.create_task(self._run(scan_id), name=f"scan-{scan_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return scan_id

    def cancel(self) -> None:
        if self.running:
            self._request_cancel()
        elif self._remote_running():
            self.publish(ScanCancelRequest(library=self.library_id))
        else:
            raise Conflict("No duplicate scan is running.", code="scan_not_running")

    # -- other instances (events relayed over Redis carry an "origin") --------------------

    def snapshot(self) -> dict[str, Any]:
        """The scan_progress body: this instance's scan, or one running on another instance."""
        if not self.running and self._remote_running():
            assert self._remote is not None
            return dict(self._remote)
        return self.progress.to_json()

    def _remote_running(self) -> bool:
        return self._remote is not None and self.clock() - self._remote_seen < REMOTE_STALE_S

    def on_remote_event(self, event: ScanEvent) -> None:
        """Event bus subscriber: mirror other instances' scans, obey relayed cancel requests."""
        if event.origin is None or event.library != self.library_id:
            return
        if isinstance(event, ScanCancelRequest):
            if self.running:
                self._request_cancel()
        elif isinstance(event, ScanProgress):
            if event.progress.get("running"):
                self._remote = dict(event.progress)
                self._remote_seen = self.clock()
        elif isinstance(event, ScanStarted):
            self._remote = Progress(running=True, scan_id=event.scan_id, phase="walking").to_json()
            self._remote_seen = self.clock()
        elif isinstance(event, ScanFinished | ScanFailed | ScanCancelled):
            self._remote = None

    def _request_cancel(self) -> None:
        self._cancel_requested = True
        self._cancel_event.set()

    def _check_cancel(self) -> None:
        if self._cancel_requested:
            raise ScanCancelledError()

    async def wait(self) -> None:
        """Wait for the running scan (if any) to end, whatever its outcome."""
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    # -- progress -------------------------------------------------------------------

    def _emit_progress(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last_emit < self.progress_interval_s:
            return
        self._last_emit = now
        self.publish(ScanProgress(library=self.library_id, progress=self.progress.to_json()))

    def _update_hash_progress(self, files: int, nbytes: int, hits: int) -> None:
        p = self.progress
        p.checked += files
        p.bytes_done += nbytes
        p.cache_hits += hits
        p.percent = 5.0 + 95.0 * (p.bytes_done / p.bytes_total if p.bytes_total else 1.0)
        p.percent = min(p.percent, 99.99)
        elapsed = self.clock() - self._hash_started
        if elapsed > 0 and p.bytes_done:
            p.rate = p.bytes_done / elapsed
            p.eta_s = (p.bytes_total - p.bytes_done) / p.rate
        self._emit_progress()

    # -- the scan -------------------------------------------------------------------

    async def _run(self, scan_id: str) -> None:
        """The scan, holding the cluster lock (renewed while it runs) when there is one."""
        renewer = asyncio.create_task(self._renew_lock()) if self.lock is not None else None
        try:
            await self._scan(scan_id)
        finally:
            if renewer is not None:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
            if self.lock is not None:
                await self.lock.release()

    async def _renew_lock(self) -> None:
        assert self.lock is not None
        while True:
            await asyncio.sleep(self.lock.ttl_ms / 3000)
            try:
                if not await self.lock.renew():
                    log.warning("scan: lost the cluster scan lock (expired while Redis was away?)")
            except RedisUnavailable:
                continue

    async def _scan(self, scan_id: str) -> None:
        started = self.clock()
        self.publish(ScanStarted(library=self.library_id, scan_id=scan_id))
        log.info("scan %s started", scan_id)
        tally = _Tally()
        try:
            await asyncio.to_thread(self.cache.reload_if_changed)
            if self._pool_broken:
                self.pool.replace(self.pool.executor)
                self._pool_broken = False
            walk = await self._walk()
            walked = self.clock()
            groups = walk.groups
            await self._hash(groups, tally)
            hashed = self.clock()
            self._check_cancel()
            self.library.check_available()  # files that vanished with their drive are not "gone"
            duration = self.clock() - started
            self.results = await asyncio.to_thread(self._build_results, scan_id, walk, tally, duration)
            self.cache.retain(walk.paths)  # files gone from the library leave the cache too
            log.info(
                "scan %s: walk %.3fs, hashing %.3fs, results %.3fs",
                scan_id,
                walked - started,
                hashed - walked,
                self.clock() - hashed,
            )
            self.outcomes["finished"] += 1
            self.progress.running = False
            self.progress.phase = "done"
            self.progress.percent = 100.0
            self.progress.eta_s = 0.0
            self._emit_progress(force=True)
            self.publish(
                ScanFinished(
                    library=self.library_id,
                    scan_id=scan_id,
                    groups=len(self.results["groups"]),
                    total_wasted=self.results["total_wasted"],
                    stats=self.results["stats"],
                )
            )
            await self._save_results()
            log.info(
                "scan %s finished: %d files, %d groups, %d hashed bytes, %.2fs",
                scan_id,
                walk.files,
                len(self.results["groups"]),
                tally.hashed_bytes,
                duration,
            )
        except ScanCancelledError:
            self._end_progress("cancelled")
            self.publish(ScanCancelled(library=self.library_id, scan_id=scan_id))
            log.info("scan %s cancelled", scan_id)
        except (ScanFailedError, ServiceUnavailable) as exc:
            message = exc.message if isinstance(exc, ServiceUnavailable) else str(exc)
            self._end_progress("failed")
            self.publish(ScanFailed(library=self.library_id, scan_id=scan_id, message=message))
            log.warning("scan %s failed: %s", scan_id, message)
        except asyncio.CancelledError:
            self._end_progress("cancelled")
            raise
        except BrokenProcessPool:
            self._pool_broken = True
            self._end_progress("failed")
            message = "A hash worker process died; the workers restart with the next scan."
            self.publish(ScanFailed(library=self.library_id, scan_id=scan_id, message=message))
            log.error("scan %s failed: a hash worker process died", scan_id)
        except Exception:
            log.exception("scan %s failed", scan_id)
            self._end_progress("failed")
            message = "The scan hit an unexpected error."
            self.publish(ScanFailed(library=self.library_id, scan_id=scan_id, message=message))
        finally:
            if self.cache.dirty:
                await asyncio.to_thread(self.cache.write, *self.cache.snapshot())

    def _end_progress(self, phase: str) -> None:
        self.outcomes[phase] += 1
        self.progress.running = False
        self.progress.phase = phase
        self.progress.eta_s = None
        self._emit_progress(force=True)

    async def _walk(self) -> WalkResult:
        root = str(self.library.root)
        try:
            folders = await asyncio.to_thread(hashing.walk_roots, root)
        except OSError:
            self.library.check_available()
            raise ScanFailedError("The library folder could not be listed.") from None
        self._check_cancel()
        chunk_count = max(1, min(len(folders), self.workers * WALK_CHUNKS_PER_WORKER))
        chunks = [folders[i::chunk_count] for i in range(chunk_count)]
        loop = asyncio.get_running_loop()
        executor = self.pool.executor
        futures = [loop.run_in_executor(executor, hashing.walk_folders, root, chunk) for chunk in chunks if chunk]
        entries: list[hashing.WalkEntry] = []
        try:
            for future in asyncio.as_completed(futures):
                found = await future
                entries.extend(found)
                self.progress.checked = len(entries)
                self._emit_progress()
        except hashing.ScanCancelled:
            await asyncio.gather(*futures, return_exceptions=True)
            raise ScanCancelledError() from None
        self._check_cancel()
        # A drive unmounted during the walk would look like an empty library: fail instead.
        self.library.check_available()
        return await asyncio.to_thread(summarize_walk, entries)  # big libraries: off the loop

    async def _hash(self, groups: list[tuple[int, list[FileInfo]]], tally: _Tally) -> None:
        p = self.progress
        p.phase = "hashing"
        p.checked = 0
        p.total = sum(len(members) for _size, members in groups)
        p.bytes_total = sum(size * len(members) for size, members in groups)
        self._hash_started = self.clock()
        self._last_cache_save = self.clock()
        self._emit_progress(force=True)
        root = str(self.library.root)
        pending: list[tuple[int, list[FileInfo], list[hashing.Member]]] = []
        settled_files = settled_bytes = settled_hits = 0
        for count, (size, members) in enumerate(groups):
            if count % 2000 == 1999:
                await asyncio.sleep(0)  # a library of millions: let requests through meanwhile
            known = self._known_hashes(members)
            try:
                outcomes = hashing.resolve_group(size, known, None)
            except hashing.NeedsWork:
                pending.append((size, members, known))
                continue
            hits = self._record(size, members, outcomes, tally, computed=0)
            settled_files += len(members)
            settled_bytes += size * len(members)
            settled_hits += hits
        self._update_hash_progress(settled_files, settled_bytes, settled_hits)
        batches = iter(_batches(pending, self.batch_bytes, self.batch_files))
        loop = asyncio.get_running_loop()
        in_flight: dict[asyncio.Future[Any], list[tuple[int, list[FileInfo], list[hashing.Member]]]] = {}
        cancelled = False
        failure: BaseException | None = None
        while True:
            while not cancelled and failure is None and len(in_flight) < 2 * self.workers:
                batch = next(batches, None)
                if batch is None:
                    break
                payload = [(size, known) for size, _members, known in batch]
                in_flight[loop.run_in_executor(self.pool.executor, hashing.hash_groups, root, payload)] = batch
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
                tally.hashed_bytes += work.bytes_read
                self.hashed_bytes_total += work.bytes_read
                hits = 0
                for (size, members, _known), outcomes in zip(batch, outcome_lists, strict=True):
                    hits += self._record(size, members, outcomes, tally, computed=None)
                hits -= work.computed
                tally.computed += work.computed
                files = sum(len(members) for _s, members, _k in batch)
                nbytes = sum(size * len(members) for size, members, _k in batch)
                self._update_hash_progress(files, nbytes, hits)
            cancelled = cancelled or self._cancel_requested
            await self._maybe_save_cache()
        if isinstance(failure, BrokenProcessPool):
            raise failure
        if failure is not None:
            self.library.check_available()  # the drive went away: say so, not "a worker failed"
            log.error("scan: a hash worker failed: %r", failure)
            raise ScanFailedError("A hash worker failed; the scan stopped.")
        if cancelled:
            raise ScanCancelledError()

    def _known_hashes(self, members: list[FileInfo]) -> list[hashing.Member]:
        known: list[hashing.Member] = []
        for info in members:
            entry = self.cache.lookup(info.path, info.size, info.mtime_ns, info.inode)
            known.append((info.path, entry.partial, entry.full) if entry else (info.path, None, None))
        return known

    def _record(
        self,
        size: int,
        members: list[FileInfo],
        outcomes: Sequence[hashing.Outcome],
        tally: _Tally,
        computed: int | None,
    ) -> int:
        """Store a settled group's hashes; returns the hashes it used (hits when nothing was computed)."""
        used = 0
        for info, (partial, full) in zip(members, outcomes, strict=True):
            used += (partial is not None) + (full is not None)
            if partial is not None or full is not None:
                self.cache.store(info.path, info.size, info.mtime_ns, info.inode, partial, full)
            if full is not None:
                tally.hashes[info.path] = (size, full)
        tally.needed += used
        return used

    async def _maybe_save_cache(self) -> None:
        if self.clock() - self._last_cache_save >= CACHE_SAVE_INTERVAL_S and self.cache.dirty:
            self._last_cache_save = self.clock()
            await asyncio.to_thread(self.cache.write, *self.cache.snapshot())

    def _build_results(self, scan_id: str, walk: WalkResult, tally: _Tally, duration: float) -> dict[str, Any]:
        by_hash: dict[tuple[int, str], list[str]] = {}
        for path, size_hash in tally.hashes.items():
            by_hash.setdefault(size_hash, []).append(path)
        old_keys = self._natural_keys
        keys: dict[str, NaturalKey] = {}
        for paths in by_hash.values():
            if len(paths) > 1:
                for path in paths:
                    known = old_keys.get(path)
                    if known is not None:
                        keys[path] = known
        groups = [_group(digest, size, paths, keys) for (size, digest), paths in by_hash.items() if len(paths) > 1]
        self._natural_keys = keys  # only the paths of this scan's groups are kept
        cache_hits = tally.needed - tally.computed
        stats = {
            "files": walk.files,
            "bytes": walk.bytes,
            "hashed_bytes": tally.hashed_bytes,
            "hashes": tally.needed,
            "cache_hits": cache_hits,
            "cache_hit_rate": round(cache_hits / tally.needed, 4) if tally.needed else 1.0,
            "duration_s": round(duration, 3),
        }
        return _results_document(scan_id, time.time(), stats, groups)

    # -- results ----------------------------------------------------------------------

    def _load_results(self) -> dict[str, Any] | None:
        try:
            self._results_mtime_ns = self.results_path.stat().st_mtime_ns
            document: dict[str, Any] = orjson.loads(self.results_path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("scan results file unreadable; ignoring it")
            return None
        return document

    async def _save_results(self) -> None:
        if self.results is None:
            return
        data = orjson.dumps(self.results)
        await asyncio.to_thread(write_atomically, self.results_path, data)
        with contextlib.suppress(OSError):
            self._results_mtime_ns = self.results_path.stat().st_mtime_ns

    def refresh_results(self) -> None:
        """Read the results file again if another instance (sharing the cache dir) rewrote it."""
        try:
            mtime_ns = self.results_path.stat().st_mtime_ns
        except OSError:
            return
        if mtime_ns != self._results_mtime_ns and not self.running:
            loaded = self._load_results()
            if loaded is not None:
                self.results = loaded

    def duplicates(self) -> dict[str, Any]:
        if self.results is None:
            raise NotFound("No duplicate scan has finished yet; start one with POST /api/scan.", code="no_scan")
        return self.results

    # -- clean-up -----------------------------------------------------------------------

    async def delete_duplicates(self, keep: str, delete: list[str]) -> dict[str, Any]:
        """Move `delete` to the trash after checking each equals `keep` byte for byte."""
        if not delete:
            raise BadRequest("'delete' must list at least one path.")
        if keep in delete:
            raise Conflict("'keep' is among the files to delete: that would remove every copy.", code="keep_in_delete")
        targets = list(dict.fromkeys(delete))
        keep_path = await asyncio.to_thread(self.library.media_path, keep)
        paths = [await asyncio.to_thread(self.library.media_path, rel) for rel in targets]
        await asyncio.to_thread(_verify_identical, keep, keep_path, list(zip(targets, paths, strict=True)))
        deleted: list[str] = []
        freed = 0
        changed: dict[tuple[str, str], None] = {}
        items = []
        try:
            for rel in targets:
                item = await asyncio.to_thread(self.trash.delete_media_path, rel)
                deleted.append(rel)
                freed += item.size
                items.append(item.to_json())
                changed[(item.site, item.model)] = None
        finally:
            for site, model in changed:
                self.publish(LibraryChanged(site=site, model=model))
            if deleted:
                self.cache.forget(deleted)
                self._drop_from_results(deleted)
                await self._save_results()
                if self.cache.dirty:
                    await asyncio.to_thread(self.cache.write, *self.cache.snapshot())
        return {"deleted": deleted, "freed": freed, "items": items}

    def _drop_from_results(self, deleted: list[str]) -> None:
        if self.results is None:
            return
        gone = set(deleted)
        groups = []
        for group in self.results["groups"]:
            paths = [p for p in group["files"] if p not in gone]
            if len(paths) > 1:
                groups.append(_group(group["hash"], group["size"], paths))
        self.results = _results_document(
            self.results["scan_id"], self.results["finished_at"], self.results["stats"], groups
        )

    # -- stats and clearing (for /api/cache_stats and /api/clear_cache) -------------------

    async def cache_stats(self) -> dict[str, object]:
        return {"hash_cache": {"entries": len(self.cache)}}

    async def clear_cache(self) -> dict[str, str]:
        await asyncio.to_thread(self.cache.clear)
        return {"hash_cache": "cleared"}


# -- helpers --------------------------------------------------------------------------------


@dataclass(slots=True)
class WalkResult:
    files: int  # media files found, hard links and symlinks to one file counted once
    bytes: int
    groups: list[tuple[int, list[FileInfo]]]  # same-size groups of 2+ non-empty files, largest first
    paths: set[str]  # every path walked


def summarize_walk(entries: list[hashing.WalkEntry]) -> WalkResult:
    """Group by size first (cheap), then collapse links only where sizes collide.

    Two names of one file (hard link, or a symlink inside the root) always have the same
    size, so they can only meet inside a same-size group; files of a unique size are done.
    One (device, inode) keeps one path: a real one over a symlink, then the first in order.
    """
    counts = Counter(entry[1] for entry in entries)
    files = len(entries)
    total = sum(size * count for size, count in counts.items())
    by_size: dict[int, dict[tuple[int, int], hashing.WalkEntry]] = {}
    for entry in entries:
        size = entry[1]
        if counts[size] < 2:
            continue
        same_size = by_size.setdefault(size, {})
        key = (entry[3], entry[4])
        current = same_size.get(key)
        if current is not None:
            files -= 1
            total -= size
            if (current[5], current[0]) <= (entry[5], entry[0]):
                continue
        same_size[key] = entry
    groups = [
        (size, [FileInfo(e[0], e[1], e[2], e[4]) for e in members.values()])
        for size, members in by_size.items()
        if size > 0 and len(members) > 1
    ]
    groups.sort(key=lambda group: group[0], reverse=True)
    return WalkResult(files, total, groups, {entry[0] for entry in entries})


def _batches(
    groups: list[tuple[int, list[FileInfo], list[hashing.Member]]],
    max_bytes: int,
    max_files: int,
) -> Iterator[list[tuple[int, list[FileInfo], list[hashing.Member]]]]:
    """Whole groups packed into batches of about `max_bytes` or `max_files`."""
    batch: list[tuple[int, list[FileInfo], list[hashing.Member]]] = []
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


NaturalKey = list[int | str]


def _group(
    digest: str, size: int, paths: list[str], keys: dict[str, NaturalKey] | None = None
) -> tuple[NaturalKey, dict[str, Any]]:
    """A duplicate group (files in natural order) and the natural key of its first file.

    `keys` memoizes natural keys by path (a rescan finds the same groups: no key is recomputed).
    """
    if keys is None:
        keys = {}
    for path in paths:
        if path not in keys:
            keys[path] = natural_key(path)
    files = sorted(paths, key=keys.__getitem__)
    group = {"id": digest[:16], "hash": digest, "size": size, "wasted": size * (len(files) - 1), "files": files}
    return keys[files[0]], group


def _results_document(
    scan_id: str, finished_at: float, stats: dict[str, Any], keyed: list[tuple[NaturalKey, dict[str, Any]]]
) -> dict[str, Any]:
    keyed.sort(key=lambda item: (-item[1]["wasted"], item[0]))
    groups = [group for _key, group in keyed]
    return {
        "scan_id": scan_id,
        "finished_at": finished_at,
        "stats": stats,
        "total_wasted": sum(g["wasted"] for g in groups),
        "groups": groups,
    }


def _verify_identical(keep: str, keep_path: Path, others: list[tuple[str, Path]]) -> None:
    """Raise 409 unless every other file is a distinct file with exactly the bytes of `keep`."""
    keep_info = keep_path.stat()
    for rel, path in others:
        info = path.stat()
        if (info.st_dev, info.st_ino) == (keep_info.st_dev, keep_info.st_ino):
            raise Conflict(
                f"{rel!r} is the same file as {keep!r} (a link); deleting it would remove every copy.",
                code="same_file",
            )
        if info.st_size != keep_info.st_size or not _same_bytes(keep_path, path):
            raise Conflict(
                f"{rel!r} no longer has the same bytes as {keep!r}; nothing was deleted. Scan again.",
                code="not_identical",
            )


def _same_bytes(a: Path, b: Path) -> bool:
    with open(a, "rb", buffering=0) as fa, open(b, "rb", buffering=0) as fb:
        while True:
            chunk_a = fa.read(COMPARE_CHUNK)
            chunk_b = fb.read(COMPARE_CHUNK)
            if chunk_a != chunk_b:
                return False
            if not chunk_a:
                return True
