"""The persistent perceptual hash cache: each image's hash and dimensions, kept across scans
and restarts, so a rescan of an unchanged library hashes nothing.

An entry is trusted only while the file's size, mtime (ns) and inode are unchanged. A file
found not to be an image is remembered too (`store(..., None)`), so a rescan does not try to
decode it again. Persistence (atomic, kill-safe writes, versioned file, one `await
cache.save()`) is `server.infra.filecache`'s; the file names its format version and the hash
(`phash.HASH_NAME`), and a cache of another version or hash is discarded whole. Pure domain
code: no aiohttp.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from server.infra.filecache import FileCache
from server.similar.phash import HASH_BITS, HASH_NAME, ImageInfo

FORMAT_VERSION = 1
FILE_NAME = "phashcache.json"
_HEX_DIGITS = HASH_BITS // 4


class PerceptualEntry(NamedTuple):
    """One file's cached result and the identity (size, mtime, inode) it holds for (a tuple:
    built and compared in C, which a rescan does once per file)."""

    size: int
    mtime_ns: int
    inode: int
    info: ImageInfo | None  # None: not an image


class PerceptualCache(FileCache[PerceptualEntry]):
    """In memory for lookups (event loop thread); saved to `<cache_dir>/phashcache.json` by `save()`.

    A row on disk is `[size, mtime_ns, inode]` for a file that is not an image, else
    `[size, mtime_ns, inode, hash as 16 hex digits, width, height, format]`.
    """

    def __init__(self, cache_dir: Path) -> None:
        super().__init__(
            cache_dir / FILE_NAME, version=FORMAT_VERSION, hash_name=HASH_NAME, what="perceptual hash cache"
        )

    def entry(self, path: str, size: int, mtime_ns: int, inode: int) -> PerceptualEntry | None:
        """The entry of the file as it is now (its `info` None: not an image), or None when it
        was not looked at in this state (one lookup tells both things a scan needs)."""
        return self._valid(path, size, mtime_ns, inode)

    def lookup(self, path: str, size: int, mtime_ns: int, inode: int) -> ImageInfo | None:
        """The image's hash and dimensions; None when not known, or known not to be an image
        (`entry` tells the two apart)."""
        entry = self._valid(path, size, mtime_ns, inode)
        return None if entry is None else entry.info

    def store(self, path: str, size: int, mtime_ns: int, inode: int, info: ImageInfo | None) -> None:
        """Record what the file is now: its hash and dimensions, or None for not an image."""
        self._put(path, PerceptualEntry(size, mtime_ns, inode, info))

    def _row(self, entry: PerceptualEntry) -> list[Any]:
        identity: list[Any] = [entry.size, entry.mtime_ns, entry.inode]
        info = entry.info
        if info is None:
            return identity
        return [*identity, f"{info.phash:0{_HEX_DIGITS}x}", info.width, info.height, info.format]

    def _entry(self, row: Any) -> PerceptualEntry:
        size, mtime_ns, inode = int(row[0]), int(row[1]), int(row[2])
        if len(row) == 3:
            return PerceptualEntry(size, mtime_ns, inode, None)
        digits, width, height, format_name = row[3:7]
        if not isinstance(digits, str) or len(digits) != _HEX_DIGITS or not isinstance(format_name, str):
            raise ValueError("bad perceptual hash row")
        phash = int(digits, 16)
        if phash < 0:
            raise ValueError("bad perceptual hash")
        info = ImageInfo(phash, int(width), int(height), format_name)
        return PerceptualEntry(size, mtime_ns, inode, info)
