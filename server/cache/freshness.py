"""Knowing, cheaply, whether a cached site listing still matches the disk.

Every site walk hands the watcher the folders it read with their mtimes. A sweep (in a thread,
every `interval` seconds) stats those folders and the library root; any folder that changed,
appeared or vanished bumps its site's *generation*. A cached listing remembers the generation
it was computed at, so checking freshness on the hot path is one dict lookup. Polling, unlike
inotify, also works on network mounts (NAS shares), which is where archives often live.

Files rewritten in place (same name, new size or mtime) leave their folder's mtime alone, so
the watcher also keeps the files of the model folders whose listings are cached (`track_files`,
the most recent `MAX_TRACKED_FOLDERS`) and re-stats them on each sweep: a change bumps that
folder's *folder generation* (which cached model listings carry) and its site's generation.
The hot path stays one dict lookup; the per-file stats happen only in the sweep's thread, and
only for folders inotify did not see quiet since their last check (`FolderEvents`, when given:
local file systems; a big library's sweep was a `stat` per tracked file twice a second).

A root that goes missing (unmounted drive) marks the library unavailable and bumps nothing,
so nothing cached is dropped because of it. Folders recorded as racy (-1: changed too shortly
before they were read) always differ on the next sweep, which forces one recompute.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from server.infra.folder_events import FolderEvents

log = logging.getLogger("archive_catalog")

ROOT_KEY = ""  # the library root's own folder is tracked under this pseudo-site
MAX_TRACKED_FOLDERS = 1000  # model folders whose files each sweep re-stats (as many as media lists cached)

FileStamp = tuple[int, float]  # a file's size and mtime as a listing saw them


@dataclass(frozen=True, slots=True)
class TrackedFiles:
    """The media files of one model folder as its cached listing saw them."""

    site: str
    files: dict[str, FileStamp]  # file path -> (size, mtime); never mutated once tracked


class FolderWatcher:
    def __init__(self, root: Path, interval: float = 0.5, events: FolderEvents | None = None) -> None:
        self.root = root
        self.interval = interval
        self.events = events  # inotify: a tracked folder quiet since its last check is not re-stat'ed
        self.available = True
        self._generations: dict[str, int] = {}
        self._total = 0
        self._folders: dict[str, dict[str, int]] = {ROOT_KEY: {}}
        self._files: OrderedDict[str, TrackedFiles] = OrderedDict()  # model folder -> its files
        self._folder_generations: dict[str, int] = {}
        self._quiet: dict[str, int] = {}  # tracked folder -> the stamp its files were last found unchanged at
        self._last_sweep_s = 0.0

    # -- hot path ---------------------------------------------------------------------

    def generation(self, site: str) -> int:
        return self._generations.get(site, 0)

    def folder_generation(self, folder: str) -> int:
        """Changes to the files of one tracked model folder (rewrites in place included)."""
        return self._folder_generations.get(folder, 0)

    @property
    def total_generation(self) -> int:
        """Changes anywhere in the library (any site, or the root's own folder)."""
        return self._total

    # -- bookkeeping ------------------------------------------------------------------

    def track(self, site: str, folders: dict[str, int]) -> None:
        """Remember the folders a fresh walk of `site` read, replacing the previous set."""
        self._folders[site] = dict(folders)

    def track_files(self, site: str, folder: str, files: dict[str, FileStamp]) -> None:
        """Re-stat these files (path -> size, mtime) on each sweep until a change or eviction."""
        self._files[folder] = TrackedFiles(site, files)
        self._files.move_to_end(folder)
        self._quiet.pop(folder, None)  # a new listing's view: checked against the disk once more
        while len(self._files) > MAX_TRACKED_FOLDERS:
            evicted, _ = self._files.popitem(last=False)
            self._quiet.pop(evicted, None)

    def track_root(self, mtime_ns: int) -> None:
        self._folders[ROOT_KEY] = {str(self.root): mtime_ns}

    def bump(self, site: str) -> None:
        self._generations[site] = self._generations.get(site, 0) + 1
        self._total += 1

    # -- sweeping ---------------------------------------------------------------------

    def _changed_sites(
        self, snapshot: dict[str, dict[str, int]], files: dict[str, TrackedFiles]
    ) -> tuple[bool, dict[str, dict[str, int]], list[str]]:
        """Runs in a thread: which sites have a folder whose mtime moved (with the new mtimes),
        and which tracked model folders have a file whose size or mtime moved."""
        try:
            os.stat(self.root)
            with os.scandir(self.root) as entries:
                next(entries, None)
        except OSError:
            return False, {}, []
        changed: dict[str, dict[str, int]] = {}
        for site, folders in snapshot.items():
            for path, recorded in folders.items():
                try:
                    current = os.stat(path).st_mtime_ns
                except OSError:
                    current = -2
                if current != recorded:
                    changed.setdefault(site, {})[path] = current
        return True, changed, [folder for folder, tracked in files.items() if _files_changed(tracked.files)]

    def _files_to_check(self) -> tuple[dict[str, TrackedFiles], dict[str, int]]:
        """The tracked folders to re-stat (all but those inotify saw quiet since their last
        check) and the stamps taken for them now, before their stats."""
        events = self.events
        if events is None:
            return dict(self._files), {}
        events.refresh()
        files: dict[str, TrackedFiles] = {}
        stamps: dict[str, int] = {}
        for folder, tracked in self._files.items():
            quiet = self._quiet.get(folder)
            if quiet is not None and events.still(folder, quiet):
                continue
            files[folder] = tracked
            stamp = events.stamp(folder, renew=True)  # a folder put in place of another: its own watch
            if stamp is not None:
                stamps[folder] = stamp
        return files, stamps

    async def sweep(self) -> None:
        snapshot = {site: dict(folders) for site, folders in self._folders.items()}
        files, stamps = self._files_to_check()
        started = time.perf_counter()
        available, changed, changed_folders = await asyncio.to_thread(self._changed_sites, snapshot, files)
        self._last_sweep_s = time.perf_counter() - started
        if available != self.available:
            self.available = available
            log.warning("library folder is %s", "back" if available else "missing or unreadable")
        for site, updates in changed.items():
            folders = self._folders.get(site)
            if folders is not None:
                folders.update(updates)
            self.bump(site)
        changed_set = set(changed_folders)
        for folder, stamp in stamps.items():
            if folder not in changed_set and self._files.get(folder) is files[folder]:
                self._quiet[folder] = stamp  # unchanged as of the stamp: skipped until an event
        for folder in changed_folders:
            tracked = self._files.get(folder)
            if tracked is not files[folder]:
                continue  # re-tracked by a newer listing while the sweep ran
            del self._files[folder]  # the listing that re-reads it tracks it again
            self._quiet.pop(folder, None)
            self._folder_generations[folder] = self._folder_generations.get(folder, 0) + 1
            self.bump(tracked.site)

    async def run(self) -> None:
        """Sweep forever; a slow sweep (a huge library) stretches the interval to stay cheap."""
        while True:
            try:
                await self.sweep()
            except Exception:  # a sweep must never kill freshness for the rest of the run
                log.exception("library sweep failed")
            await asyncio.sleep(max(self.interval, self._last_sweep_s * 10))


def _files_changed(files: dict[str, FileStamp]) -> bool:
    for path, (size, mtime) in files.items():
        try:
            info = os.stat(path)
        except OSError:
            return True
        if info.st_size != size or info.st_mtime != mtime:
            return True
    return False
