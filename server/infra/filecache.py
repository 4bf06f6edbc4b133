"""A persistent per-file cache: what a scan learnt about each file, kept across scans and restarts.

The one machinery behind the duplicate scan's hash cache (`server.scan.hashcache`) and the
perceptual hash cache (`server.similar.cache`); a subclass says what an entry holds and how
it is written as a JSON row.

Keyed by path relative to the library root; an entry is trusted only while the file's size,
mtime (ns) and inode are unchanged. The file on disk is replaced atomically (temp file, fsync,
rename), so a kill at any moment leaves either the previous or the new cache, never a broken
one; a file that cannot be read (or a stray temp file from a killed write) is ignored, and the
scan simply computes again. The file names its format version and hash function; a cache
written with another is discarded whole, never mixed with new entries. There is one way to
save it, `await cache.save()`: a copy taken on the event loop, written in a thread, and nothing
written when nothing changed. Pure domain code: no aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import orjson

from server.infra.atomic import write_atomically

log = logging.getLogger("archive_catalog")


class FileIdentity(Protocol):
    """What an entry records of the file it describes (read-only attributes)."""

    @property
    def size(self) -> int: ...
    @property
    def mtime_ns(self) -> int: ...
    @property
    def inode(self) -> int: ...


EntryT = TypeVar("EntryT", bound=FileIdentity)


class FileCache(ABC, Generic[EntryT]):
    """In memory for lookups (event loop thread); saved to `path` by `save()`.

    Entries must be immutable values (a save copies the dict, not the entries) that compare
    by value (storing an equal entry changes nothing).
    """

    def __init__(self, path: Path, *, version: int, hash_name: str, what: str, unnamed_hash: str | None = None) -> None:
        """`what` names the cache in log lines; `unnamed_hash` is what a file naming no hash holds."""
        self.path = path
        self._version = version
        self._hash_name = hash_name
        self._what = what
        self._unnamed_hash = unnamed_hash
        self._entries: dict[str, EntryT] = {}
        self._save_lock = threading.Lock()
        self._generation = 0  # bumped on every change; a save records what it wrote
        self._saved_generation = 0
        self._file_mtime_ns = 0  # of the file as we last read or wrote it

    def __len__(self) -> int:
        return len(self._entries)

    # -- rows on disk (the subclass's format) -------------------------------------------

    @abstractmethod
    def _row(self, entry: EntryT) -> list[Any]:
        """The JSON row of an entry."""

    @abstractmethod
    def _entry(self, row: Any) -> EntryT:
        """An entry from its JSON row; raises ValueError, TypeError or IndexError for a bad row."""

    # -- lookups and updates (event loop thread) ----------------------------------------

    def _valid(self, path: str, size: int, mtime_ns: int, inode: int) -> EntryT | None:
        """The entry of `path` while it describes the file as it is now."""
        entry = self._entries.get(path)
        if entry is None or entry.size != size or entry.mtime_ns != mtime_ns or entry.inode != inode:
            return None
        return entry

    def _put(self, path: str, entry: EntryT) -> None:
        """Record `entry` for `path` (a change only when it differs from what is there)."""
        if self._entries.get(path) != entry:
            self._entries[path] = entry
            self._changed()

    def _changed(self) -> None:
        """Entries changed (here, or by a subclass's bulk update): the one place the generation moves."""
        self._generation += 1

    def forget(self, paths: Iterable[str]) -> None:
        for path in paths:
            if self._entries.pop(path, None) is not None:
                self._changed()

    def retain(self, paths: set[str]) -> int:
        """Drop entries for paths a complete walk no longer found; returns how many."""
        gone = [path for path in self._entries if path not in paths]
        self.forget(gone)
        return len(gone)

    def clear(self) -> None:
        """Forget everything, in memory and on disk."""
        self._entries.clear()
        self._changed()
        with self._save_lock:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self._saved_generation = self._generation

    @property
    def generation(self) -> int:
        """Bumped by every change (a store, forget, clear or load): equal generations, the same
        entries."""
        return self._generation

    @property
    def dirty(self) -> bool:
        return self._generation != self._saved_generation

    # -- persistence -----------------------------------------------------------------

    async def save(self) -> None:
        """Write what changed since the last save: the one way the cache is saved.

        The entries are copied here on the event loop (a shallow copy: entries are immutable),
        then encoded and written atomically in a thread; of two saves racing, the newer wins.
        """
        if not self.dirty:
            return
        generation, entries = self._generation, dict(self._entries)
        await asyncio.to_thread(self._write, generation, entries)

    def _write(self, generation: int, entries: dict[str, EntryT]) -> None:
        with self._save_lock:
            if generation < self._saved_generation:
                return  # a newer snapshot is already on disk
            rows = {path: self._row(entry) for path, entry in entries.items()}
            data = orjson.dumps({"version": self._version, "hash": self._hash_name, "entries": rows})
            write_atomically(self.path, data)  # temp files are named .{name}.*.tmp, as load() expects
            self._file_mtime_ns = os.stat(self.path).st_mtime_ns
            self._saved_generation = generation

    def reload_if_changed(self) -> None:
        """Instances sharing a cache dir: take the file another one wrote since (it knows more)."""
        try:
            mtime_ns = os.stat(self.path).st_mtime_ns
        except OSError:
            return
        if mtime_ns != self._file_mtime_ns and not self.dirty:
            self.load()

    def load(self) -> int:
        """Read the cache file (blocking); a missing or unreadable file leaves it empty."""
        for stray in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                stray.unlink()
        try:
            self._file_mtime_ns = os.stat(self.path).st_mtime_ns
            document = orjson.loads(self.path.read_bytes())
            if document.get("version") != self._version or document.get("hash") != self._hash_name:
                log.info(
                    "%s has format %r (%r hashes), not %d (%s); starting empty",
                    self._what,
                    document.get("version"),
                    document.get("hash", self._unnamed_hash),
                    self._version,
                    self._hash_name,
                )
                return 0
            entries = {str(path): self._entry(row) for path, row in document["entries"].items()}
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            log.warning("%s unreadable (%s); starting empty", self._what, type(exc).__name__)
            return 0
        self._entries = entries
        self._changed()  # other entries: a change for whoever compares generations
        self._saved_generation = self._generation
        return len(entries)
