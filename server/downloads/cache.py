"""The download cache as the service sees it: an index outage is logged and downloads carry on.

The one place of that policy: each call on the store that may fail because its index (SQLite,
or Redis that went away) or its disk fails answers a neutral value instead — a miss, "not
saved", nothing purged — after one warning line. Downloads are then built without the cache.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from server.cache.downloads import CachedArchive, DownloadStore

log = logging.getLogger("archive_catalog")

Result = TypeVar("Result")


async def _or_else(attempt: Awaitable[Result], fallback: Result, warning: str, *args: object) -> Result:
    """`attempt`'s result, or `fallback` after one warning (its last %s is the error)."""
    try:
        return await attempt
    except Exception as exc:
        log.warning(warning, *args, exc)
        return fallback


class TolerantCache:
    """A `DownloadStore` whose failures never reach a download (see the module docstring)."""

    def __init__(self, store: DownloadStore) -> None:
        self.store = store

    async def lookup(self, key: str) -> CachedArchive | None:
        return await _or_else(
            self.store.lookup(key), None, "Download cache index unavailable (%s): building without the cache"
        )

    async def store_bytes(self, key: str, extension: str, body: bytearray, site: str, scope: tuple[str, ...]) -> bool:
        saved = self.store.store_bytes(key, extension, body, site, scope)
        return await _or_else(saved, False, "Download cache could not save %s: %s", key)

    async def commit(self, temp: Path, key: str, extension: str, size: int, site: str, scope: tuple[str, ...]) -> bool:
        saved = self.store.commit(temp, key, extension, size, site, scope)
        return await _or_else(saved, False, "Download cache could not save %s: %s", key)

    async def purge(self, site: str, model: str | None) -> int:
        where = f"{site}/{model or '*'}"
        return await _or_else(
            self.store.purge(site, model), 0, "Download cache could not drop archives of %s: %s", where
        )

    async def stats(self) -> dict[str, object]:
        unavailable: dict[str, object] = {
            "entries": 0,
            "bytes": 0,
            "max_bytes": self.store.max_bytes,
            "hits": self.store.hits,
            "misses": self.store.misses,
            "index": self.store.index.name,
            "error": "index unavailable",
        }
        return await _or_else(self.store.stats(), unavailable, "Download cache index unavailable: %s")

    async def clear(self) -> bool:
        """Whether the cache was emptied."""
        cleared = self._clear()
        return await _or_else(cleared, False, "Download cache index unavailable, not cleared: %s")

    async def _clear(self) -> bool:
        await self.store.clear()
        return True
