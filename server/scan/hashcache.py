"""The persistent hash cache: what the duplicate scan learnt, kept across scans and restarts.

Keyed by path relative to the library root; an entry is trusted only while the file's size,
mtime (ns) and inode are unchanged. It holds the head+tail hash and the full hash, either of
which may be missing. The file on disk is replaced atomically (temp file, fsync, rename), so
a kill at any moment leaves either the previous or the new cache, never a broken one; a file
that cannot be read (or a stray temp file from a killed write) is ignored, and the scan simply
hashes again. The file names its format version and hash function; a cache written with
another (an older version, BLAKE3 hashes) is discarded whole, never mixed with new hashes.
There is one way to save it, `await cache.save()`: a copy taken on the event loop, written in
a thread, and nothing written when nothing changed. Pure domain code: no aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import orjson

from server.infra.atomic import write_atomically
from server.scan.hashing import HASH_NAME

log = logging.getLogger("archive_catalog")

FORMAT_VERSION = 2  # 1: BLAKE3 hashes; 2: XXH3-128 (HASH_NAME), named in the file too
FILE_NAME = "hashcache.json"


@dataclass(frozen=True, slots=True)
class Entry:
    size: int
    mtime_ns: int
    inode: int
    partial: str | None
    full: str | None


class HashCache:
    """In memory for lookups (event loop thread); saved to `<cache_dir>/hashcache.json` by `save()`."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / FILE_NAME
        self._entries: dict[str, Entry] = {}
        self._save_lock = threading.Lock()
        self._generation = 0  # bumped on every change; a save records what it wrote
        self._saved_generation = 0
        self._file_mtime_ns = 0  # of the file as we last read or wrote it

    def __len__(self) -> int:
        return len(self._entries)

    # -- lookups and updates (event loop thread) ----------------------------------------

    def lookup(self, path: str, size: int, mtime_ns: int, inode: int) -> Entry | None:
        entry = self._entries.get(path)
        if entry is None or entry.size != size or entry.mtime_ns != mtime_ns or entry.inode != inode:
            return None
        return entry

    def store(self, path: str, size: int, mtime_ns: int, inode: int, partial: str | None, full: str | None) -> None:
        old = self._entries.get(path)
        if old is not None and (old.size, old.mtime_ns, old.inode) == (size, mtime_ns, inode):
            partial = partial or old.partial
            full = full or old.full
            if (partial, full) == (old.partial, old.full):
                return
        self._entries[path] = Entry(size, mtime_ns, inode, partial, full)
        self._generation += 1

    def forget(self, paths: list[str]) -> None:
        for path in paths:
            if self._entries.pop(path, None) is not None:
                self._generation += 1

    def retain(self, paths: set[str]) -> int:
        """Drop entries for paths a complete walk no longer found; returns how many."""
        gone = [path for path in self._entries if path not in paths]
        self.forget(gone)
        return len(gone)

    def clear(self) -> None:
        """Forget everything, in memory and on disk."""
        self._entries.clear()
        self._generation += 1
        with self._save_lock:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self._saved_generation = self._generation

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

    def _write(self, generation: int, entries: dict[str, Entry]) -> None:
        with self._save_lock:
            if generation < self._saved_generation:
                return  # a newer snapshot is already on disk
            rows = {path: [e.size, e.mtime_ns, e.inode, e.partial, e.full] for path, e in entries.items()}
            data = orjson.dumps({"version": FORMAT_VERSION, "hash": HASH_NAME, "entries": rows})
            write_atomically(self.path, data)  # temp files are named .{FILE_NAME}.*.tmp, as load() expects
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
        for stray in self.path.parent.glob(f".{FILE_NAME}.*.tmp"):
            with contextlib.suppress(OSError):
                stray.unlink()
        try:
            self._file_mtime_ns = os.stat(self.path).st_mtime_ns
            document = orjson.loads(self.path.read_bytes())
            if document.get("version") != FORMAT_VERSION or document.get("hash") != HASH_NAME:
                log.info(
                    "hash cache has format %r (%r hashes), not %d (%s); starting empty",
                    document.get("version"),
                    document.get("hash", "blake3"),
                    FORMAT_VERSION,
                    HASH_NAME,
                )
                return 0
            entries = {
                str(path): Entry(int(row[0]), int(row[1]), int(row[2]), row[3], row[4])
                for path, row in document["entries"].items()
            }
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            log.warning("hash cache unreadable (%s); starting empty", type(exc).__name__)
            return 0
        self._entries = entries
        self._generation = self._saved_generation = 0
        return len(entries)
