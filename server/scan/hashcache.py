"""The persistent hash cache: what the duplicate scan learnt, kept across scans and restarts.

An entry holds a file's head+tail hash and full hash, either of which may be missing, and is
trusted only while the file's size, mtime (ns) and inode are unchanged. Persistence (atomic,
kill-safe writes, versioned file, one `await cache.save()`) is `server.infra.filecache`'s.
The file names its format version and hash function; a cache written with another (an older
version, BLAKE3 hashes) is discarded whole, never mixed with new hashes. Pure domain code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from server.infra.filecache import FileCache, FileIdentity
from server.scan.hashing import HASH_NAME, Member

FORMAT_VERSION = 2  # 1: BLAKE3 hashes; 2: XXH3-128 (HASH_NAME), named in the file too
FILE_NAME = "hashcache.json"


class Entry(NamedTuple):
    """One file's cached result and the identity (size, mtime, inode) it holds for (a tuple:
    built and compared in C, which a rescan does once per file)."""

    size: int
    mtime_ns: int
    inode: int
    partial: str | None
    full: str | None


class Walked(FileIdentity, Protocol):
    """A file as the walk saw it (server.scan.results.FileInfo)."""

    @property
    def path(self) -> str: ...


class _File(NamedTuple):
    """One file's identity, for `store`."""

    path: str
    size: int
    mtime_ns: int
    inode: int


Learnt = tuple[Walked, Member, str | None, str | None]  # a file, its hashes known before, and those settled

_new_entry = tuple.__new__  # Entry's own __new__ is a Python function: 3x slower, once per file
_path, _size, _mtime_ns, _inode = (attrgetter(name) for name in ("path", "size", "mtime_ns", "inode"))


class HashCache(FileCache[Entry]):
    """In memory for lookups (event loop thread); saved to `<cache_dir>/hashcache.json` by `save()`."""

    def __init__(self, cache_dir: Path) -> None:
        # version 1 files named no hash: they held BLAKE3 hashes
        super().__init__(
            cache_dir / FILE_NAME, version=FORMAT_VERSION, hash_name=HASH_NAME, what="hash cache", unnamed_hash="blake3"
        )

    def lookup(self, path: str, size: int, mtime_ns: int, inode: int) -> Entry | None:
        return self._valid(path, size, mtime_ns, inode)

    def members(self, files: Iterable[Walked]) -> list[Member]:
        """Each file with the hashes known for it as it is now: `lookup` for a whole group,
        in one loop (a rescan does this once per file)."""
        get = self._entries.get
        members: list[Member] = []
        for info in files:
            entry = get(info.path)
            if entry is None or entry.size != info.size or entry.mtime_ns != info.mtime_ns or entry.inode != info.inode:
                members.append((info.path, None, None))
            else:
                members.append((info.path, entry.partial, entry.full))
        return members

    def store_many(self, learnt: Iterable[Learnt]) -> None:
        """Record what settling files taught: each file, the hashes `members` knew for it then,
        and those its group was settled with (a hash not computed keeps the known one)."""
        new_entry = _new_entry
        entries = [
            (info.path, new_entry(Entry, (info.size, info.mtime_ns, info.inode, partial or known[1], full or known[2])))
            for info, known, partial, full in learnt
        ]
        if entries:
            self._entries.update(entries)
            self._changed()

    def store_computed(self, files: Sequence[Walked], fulls: Iterable[str]) -> None:
        """Record full hashes just computed for files the cache knew nothing of (`store_many`
        for files that needed no other hash), the entries made in C."""
        identities = zip(map(_size, files), map(_mtime_ns, files), map(_inode, files), repeat(None), fulls)
        self._entries.update(zip(map(_path, files), map(_new_entry, repeat(Entry), identities), strict=True))
        if files:
            self._changed()

    def store(self, path: str, size: int, mtime_ns: int, inode: int, partial: str | None, full: str | None) -> None:
        """Record what was learnt of one file (`members` and `store_many` for one): a hash not
        given is kept from the entry of the unchanged file."""
        file = _File(path, size, mtime_ns, inode)
        known = self.members([file])[0]
        if partial in (None, known[1]) and full in (None, known[2]):
            return  # nothing new
        self.store_many([(file, known, partial, full)])

    def _row(self, entry: Entry) -> list[Any]:
        return [entry.size, entry.mtime_ns, entry.inode, entry.partial, entry.full]

    def _entry(self, row: Any) -> Entry:
        return Entry(int(row[0]), int(row[1]), int(row[2]), row[3], row[4])
