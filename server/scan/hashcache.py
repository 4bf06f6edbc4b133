"""The persistent hash cache: what the duplicate scan learnt, kept across scans and restarts.

An entry holds a file's head+tail hash and full hash, either of which may be missing, and is
trusted only while the file's size, mtime (ns) and inode are unchanged. Persistence (atomic,
kill-safe writes, versioned file, one `await cache.save()`) is `server.infra.filecache`'s.
The file names its format version and hash function; a cache written with another (an older
version, BLAKE3 hashes) is discarded whole, never mixed with new hashes. Pure domain code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.infra.filecache import FileCache
from server.scan.hashing import HASH_NAME

FORMAT_VERSION = 2  # 1: BLAKE3 hashes; 2: XXH3-128 (HASH_NAME), named in the file too
FILE_NAME = "hashcache.json"


@dataclass(frozen=True, slots=True)
class Entry:
    size: int
    mtime_ns: int
    inode: int
    partial: str | None
    full: str | None


class HashCache(FileCache[Entry]):
    """In memory for lookups (event loop thread); saved to `<cache_dir>/hashcache.json` by `save()`."""

    def __init__(self, cache_dir: Path) -> None:
        # version 1 files named no hash: they held BLAKE3 hashes
        super().__init__(
            cache_dir / FILE_NAME, version=FORMAT_VERSION, hash_name=HASH_NAME, what="hash cache", unnamed_hash="blake3"
        )

    def lookup(self, path: str, size: int, mtime_ns: int, inode: int) -> Entry | None:
        return self._valid(path, size, mtime_ns, inode)

    def store(self, path: str, size: int, mtime_ns: int, inode: int, partial: str | None, full: str | None) -> None:
        """Record what was learnt; a hash not given is kept from the entry of the unchanged file."""
        old = self._valid(path, size, mtime_ns, inode)
        if old is not None:
            partial = partial or old.partial
            full = full or old.full
        self._put(path, Entry(size, mtime_ns, inode, partial, full))

    def _row(self, entry: Entry) -> list[Any]:
        return [entry.size, entry.mtime_ns, entry.inode, entry.partial, entry.full]

    def _entry(self, row: Any) -> Entry:
        return Entry(int(row[0]), int(row[1]), int(row[2]), row[3], row[4])
