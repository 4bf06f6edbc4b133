"""The scan service: one scan at a time (of either kind), across instances too; results; deletes.

`ScanService` owns the worker pool (explicit `forkserver` context, warmed at open, shut down
at close), the caches and results of both kinds of scan (persisted in the cache dir: the hash
cache and duplicate results; the perceptual cache and similar-image results). It starts a run
of the kind asked for (server.scan.run.ExactScanRun, duplicates; server.similar.run.
SimilarScanRun, similar images: the walk, the work, the progress and the outcome events), and
cancels or waits for it. When instances share Redis, a `ScanLock` (renewed while the scan runs)
keeps one scan per library across them, other instances' scan events are mirrored into
`snapshot()`, and a cancel asked here for a scan running elsewhere is relayed to it. Verified
deletes (one group's copies, or many groups resolved by a rule: keep the oldest, the newest,
the shortest path, the copy in a site or model) move byte-identical copies to the trash,
publish `library.changed` and drop the deleted paths from every cache and result
(`move_to_trash`, shared with `similar`: server.similar.service.SimilarImages, the similar
images' groups, deletes and resolutions). Pure domain code: no aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event as CancelEvent
from pathlib import Path
from typing import Any, Protocol

import blake3

from server.errors import BadRequest, Conflict, ServiceUnavailable
from server.infra.cluster import RedisUnavailable
from server.infra.events import (
    SCAN_KINDS,
    LibraryChanged,
    ScanCancelled,
    ScanCancelRequest,
    ScanEvent,
    ScanFailed,
    ScanFinished,
    ScanProgress,
    ScanStarted,
)
from server.infra.folder_events import FolderEvents
from server.infra.pools import WorkerPool
from server.library import Library
from server.scan.hashcache import HashCache
from server.scan.progress import PROGRESS_INTERVAL_S, Progress, Publish
from server.scan.results import Moved, ResultsStore, resolve_groups, verify_identical
from server.scan.run import BATCH_BYTES, BATCH_FILES, ExactScanRun, ScanCounters, ScanRun, ScanTools
from server.similar.cache import PerceptualCache
from server.similar.results import SimilarResults
from server.similar.run import SimilarScanRun
from server.similar.service import SimilarImages
from server.trash import Trash

log = logging.getLogger("archive_catalog")

REMOTE_STALE_S = 30.0  # a remote scan silent this long is no longer shown as running


class ScanLock(Protocol):
    """The cluster-wide scan lock (server.infra.cluster.ClusterLock), when instances share Redis."""

    ttl_ms: int

    async def acquire(self) -> bool: ...
    async def renew(self) -> bool: ...
    async def release(self) -> None: ...


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
        folder_events: FolderEvents | None = None,
    ) -> None:
        self.library = library
        self.trash = trash
        self.cache = HashCache(cache_dir)
        self.results = ResultsStore(cache_dir)
        self.perceptual_cache = PerceptualCache(cache_dir)
        self.similar = SimilarImages(library, SimilarResults(cache_dir), self.move_to_trash, lambda: self.running)
        self.publish = publish
        self.pool = pool
        self.lock = lock
        self.library_id = self.library_id_of(library)
        self.counters = ScanCounters()
        self._tools = ScanTools(
            library=library,
            library_id=self.library_id,
            pool=pool,
            publish=publish,
            counters=self.counters,
            cancel_flag=cancel_flag,
            events=folder_events,
        )
        # tunables each run takes at its start (tests shorten them)
        self.clock = clock
        self.progress_interval_s = progress_interval_s
        self.batch_bytes = BATCH_BYTES
        self.batch_files = BATCH_FILES
        self.progress = Progress()
        self._run: ScanRun | None = None  # the current or last scan
        self._pool_broken = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._remote: dict[str, Any] | None = None  # progress of a scan on another instance
        self._remote_seen = 0.0
        self._remote_ended: str | None = None  # the last scan another instance told its outcome of

    @staticmethod
    def library_id_of(library: Library) -> str:
        """The id instances sharing a library agree on (its scan lock and events carry it)."""
        return blake3.blake3(str(library.root).encode()).hexdigest(8)

    @property
    def outcomes(self) -> dict[str, int]:
        """Scans ended here by outcome, for /metrics."""
        return self.counters.outcomes

    @property
    def hashed_bytes_total(self) -> int:
        return self.counters.hashed_bytes

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        """Load the caches and last results, start and warm the worker pool."""
        entries = await asyncio.to_thread(self.cache.load)
        images = await asyncio.to_thread(self.perceptual_cache.load)
        await asyncio.to_thread(self.results.load)
        await asyncio.to_thread(self.similar.results.load)
        await self.pool.start()
        self._pool_broken = False
        log.info("scan: %d hash workers ready, %d cached hashes, %d cached images", self.pool.workers, entries, images)

    async def close(self) -> None:
        """Stop a running scan, save what the caches learnt, shut the workers down."""
        if self.running:
            self._request_cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.cache.save()
        await self.perceptual_cache.save()
        await self.pool.close()

    # -- control ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.progress.running

    async def start(self, kind: str = "exact") -> str:
        """Start a scan of `kind` (SCAN_KINDS); 409 if one of either kind runs (here or on
        another instance), 503 if the root is missing."""
        if kind not in SCAN_KINDS:
            raise BadRequest(f"A scan's kind is one of {', '.join(SCAN_KINDS)}, not {kind!r}.")
        if self.running or self._remote_running():
            raise Conflict("A scan is already running.", code="scan_running")
        if not self.pool.running:
            raise ServiceUnavailable("The hash workers are not running.", code="scan_unavailable")
        self.library.check_available()
        scan_id = secrets.token_hex(8)
        previous = self.progress
        self.progress = Progress(running=True, scan_id=scan_id, kind=kind, phase="walking", started_at=time.time())
        if self.lock is not None:
            try:
                acquired = await self.lock.acquire()
            except RedisUnavailable:
                acquired = True
                log.warning("scan: Redis is down; only this instance is kept from scanning twice")
            if not acquired:
                self.progress = previous
                raise Conflict("A scan is already running on another instance.", code="scan_running")
        run: ScanRun
        if kind == "similar":
            run = SimilarScanRun(
                scan_id, self._tools, self.progress, self.perceptual_cache, self.similar.results, **self._run_settings()
            )
        else:
            run = ExactScanRun(scan_id, self._tools, self.progress, self.cache, self.results, **self._run_settings())
        self._run = run
        task = asyncio.create_task(self._holding_lock(run), name=f"scan-{scan_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return scan_id

    def _run_settings(self) -> dict[str, Any]:
        """The tunables a run takes at its start."""
        return dict(
            clock=self.clock,
            progress_interval_s=self.progress_interval_s,
            batch_bytes=self.batch_bytes,
            batch_files=self.batch_files,
            restart_pool=self._pool_broken,
        )

    def cancel(self) -> None:
        if self.running:
            self._request_cancel()
        elif self._remote_running():
            self.publish(ScanCancelRequest(library=self.library_id))
        else:
            raise Conflict("No scan is running.", code="scan_not_running")

    def _request_cancel(self) -> None:
        if self._run is not None:
            self._run.cancel()

    async def wait(self) -> None:
        """Wait for the running scan (if any) to end, whatever its outcome."""
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def _holding_lock(self, run: ScanRun) -> None:
        """The scan, holding the cluster lock (renewed while it runs) when there is one."""
        renewer = asyncio.create_task(self._renew_lock()) if self.lock is not None else None
        try:
            await run.run()
        finally:
            self._pool_broken = run.pool_broken
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
            # a progress that arrives after its scan's outcome (delayed on the way) is not a scan
            if event.progress.get("running") and event.progress.get("scan_id") != self._remote_ended:
                self._remote = dict(event.progress)
                self._remote_seen = self.clock()
        elif isinstance(event, ScanStarted):
            self._remote = Progress(running=True, scan_id=event.scan_id, kind=event.kind, phase="walking").to_json()
            self._remote_seen = self.clock()
        elif isinstance(event, ScanFinished | ScanFailed | ScanCancelled):
            self._remote = None
            self._remote_ended = event.scan_id

    # -- results and clean-up ------------------------------------------------------------

    def refresh_results(self) -> None:
        """Read the results file again if another instance (sharing the cache dir) rewrote it
        (blocking; not while a scan runs here)."""
        if not self.running:
            self.results.refresh()

    def duplicates(self) -> dict[str, Any]:
        return self.results.require()

    async def delete_duplicates(self, keep: str, delete: list[str]) -> dict[str, Any]:
        """Move `delete` to the trash after checking each equals `keep` byte for byte."""
        targets = await self._verified(keep, delete)
        moved = await self.move_to_trash(targets)
        return {"deleted": moved["deleted"], "freed": moved["bytes"], "items": moved["items"]}

    async def resolve_duplicates(
        self, rule: str, groups: list[str] | None, *, site: str | None, model: str | None, dry_run: bool
    ) -> dict[str, Any]:
        """Keep one copy per chosen group by `rule`, and (unless `dry_run`) move the others to
        the trash the way `delete_duplicates` does, group by group: a group whose files changed
        since the scan is left alone and listed in `changed`; 409 if that is every group."""
        if self.running:
            raise Conflict("A duplicate scan is running; resolve its groups when it has finished.", code="scan_running")
        resolution = resolve_groups(self.results.require(), rule, groups, site=site, model=model)
        if dry_run:
            return resolution.preview()
        return await resolution.carry_out(self._verified, self.move_to_trash, all_changed_code="not_identical")

    async def _verified(self, keep: str, delete: list[str]) -> list[str]:
        """`delete` without repeats, once each is checked to be a distinct file with the bytes of
        `keep` (never the last copy: `keep` itself, or a link to it, is refused)."""
        if not delete:
            raise BadRequest("'delete' must list at least one path.")
        if keep in delete:
            raise Conflict("'keep' is among the files to delete: that would remove every copy.", code="keep_in_delete")
        targets = list(dict.fromkeys(delete))
        keep_path = await asyncio.to_thread(self.library.media_path, keep)
        paths = [await asyncio.to_thread(self.library.media_path, rel) for rel in targets]
        await asyncio.to_thread(verify_identical, keep, keep_path, list(zip(targets, paths, strict=True)))
        return targets

    async def move_to_trash(self, targets: list[str]) -> Moved:
        """Move verified copies to the trash; tell `library.changed` once per model touched and
        drop the moved paths from every cache and result, whatever happens midway."""
        deleted: list[str] = []
        moved_bytes = 0
        changed: dict[tuple[str, str], None] = {}
        items = []
        try:
            for rel in targets:
                item = await asyncio.to_thread(self.trash.delete_media_path, rel)
                deleted.append(rel)
                moved_bytes += item.size
                items.append(item.to_json())
                changed[(item.site, item.model)] = None
        finally:
            for site, model in changed:
                self.publish(LibraryChanged(site=site, model=model))
            if deleted:
                await self._forget(deleted)
        return {"deleted": deleted, "bytes": moved_bytes, "items": items}

    async def _forget(self, deleted: list[str]) -> None:
        """Deleted paths leave both kinds' caches and results (in memory and on disk)."""
        self.cache.forget(deleted)
        self.results.drop(deleted)
        self.perceptual_cache.forget(deleted)
        await self.results.save()
        if self.similar.results.drop(deleted):  # a big file: rewritten only when it changes
            await self.similar.results.save()
        await self.cache.save()
        await self.perceptual_cache.save()

    # -- stats and clearing (for /api/cache_stats and /api/clear_cache) -------------------

    async def cache_stats(self) -> dict[str, object]:
        return {"hash_cache": {"entries": len(self.cache)}, "perceptual_cache": {"entries": len(self.perceptual_cache)}}

    async def clear_cache(self) -> dict[str, str]:
        self.results.last_walk = None  # the kept walk is a cache too: the next scan walks everything
        await asyncio.to_thread(self.cache.clear)
        await asyncio.to_thread(self.perceptual_cache.clear)
        return {"hash_cache": "cleared", "perceptual_cache": "cleared"}
