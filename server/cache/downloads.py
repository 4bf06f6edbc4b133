"""The download cache: finished archives on disk plus an index of them (no aiohttp).

Files live in `CACHE_DIR/downloads/` as `<key>.<ext>`; archives being written are
`tmp-<random>.part` beside them (unique names, so concurrent builds never collide) and are
renamed into place atomically once complete. The index records key -> file, size, created,
last hit, behind one small interface with two backends: `LocalIndex` (SQLite in the cache
dir: no other process, survives restarts) and `RedisIndex` (redis.asyncio through the app's
`RedisLink`, shared by every instance on the same storage). The store bounds the total size with least-recently-used
eviction and treats an index entry whose file is gone as a miss (the entry is dropped).

A hit is the hot path (a repeat download): the archive is opened in one thread hop, the
`LocalIndex` answers from its memory (it is the only writer of its file), and the hit's time is
written to the index in batches, at most every TOUCH_FLUSH_S and always before an eviction —
not one index write per download.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson
from redis.asyncio import Redis

from server.errors import NotFound
from server.infra.cluster import RedisLink
from server.infra.pools import open_off_loop, open_regular

log = logging.getLogger("archive_catalog")

TOUCH_FLUSH_S = 5.0  # last-hit times reach the index at most this late (evictions flush first)
KNOWN_ENTRIES_KEPT = 1024  # entries the local index keeps in memory for hits

ARCHIVE_NAME = re.compile(r"[0-9a-f]{40}\.(zip|pdf)")
TEMP_PREFIX = "tmp-"
TEMP_SUFFIX = ".part"


@dataclass(frozen=True, slots=True)
class CacheEntry:
    key: str
    file: str  # a name inside the downloads folder
    size: int
    created: float
    last_hit: float
    site: str = ""
    models: tuple[str, ...] = ()  # none: the whole site

    def shows(self, site: str, model: str | None) -> bool:
        """Whether this archive may hold media of `site`/`model` (None: anything in the site)."""
        if self.site != site:
            return False
        if model is None or not self.models:
            return True
        return any(m == model or m.startswith(model + "/") for m in self.models)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "key": self.key,
                "file": self.file,
                "size": self.size,
                "created": self.created,
                "last_hit": self.last_hit,
                "site": self.site,
                "models": list(self.models),
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str, last_hit: float | None = None) -> CacheEntry:
        data = orjson.loads(raw)
        return cls(
            data["key"],
            data["file"],
            int(data["size"]),
            float(data["created"]),
            float(data["last_hit"] if last_hit is None else last_hit),
            str(data.get("site", "")),
            tuple(data.get("models", ())),
        )


class DownloadIndex(Protocol):
    """Key -> entry, ordered by last hit. Both backends behave the same."""

    name: str

    async def get(self, key: str) -> CacheEntry | None: ...
    async def put(self, entry: CacheEntry) -> None: ...
    async def touch(self, hits: Mapping[str, float]) -> None: ...
    async def remove(self, key: str) -> None: ...
    async def least_recent(self, limit: int) -> list[CacheEntry]: ...
    async def totals(self) -> tuple[int, int]: ...
    async def all_entries(self) -> list[CacheEntry]: ...
    async def open(self) -> None: ...
    async def close(self) -> None: ...


class LocalIndex:
    """The embedded index: one SQLite file, queried in a thread, one connection behind a lock;
    recent entries are also kept in memory (every write goes through here, so it never lags)."""

    name = "local"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._recent: OrderedDict[str, CacheEntry] = OrderedDict()

    async def open(self) -> None:
        await asyncio.to_thread(self._connect)

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS archives (key TEXT PRIMARY KEY, size INTEGER NOT NULL,"
                " last_hit REAL NOT NULL, entry BLOB NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS archives_lru ON archives (last_hit)")

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            if self._db is None:
                raise RuntimeError("the download index is not open")
            return self._db.execute(sql, args).fetchall()

    async def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        return await asyncio.to_thread(self._run, sql, args)

    @staticmethod
    def _entry(row: tuple[object, ...]) -> CacheEntry:
        raw, last_hit = row
        assert isinstance(raw, bytes) and isinstance(last_hit, float)
        return CacheEntry.from_json(raw, last_hit)

    async def get(self, key: str) -> CacheEntry | None:
        entry = self._recent.get(key)
        if entry is None:
            rows = await self._query("SELECT entry, last_hit FROM archives WHERE key = ?", (key,))
            if not rows:
                return None
            entry = self._entry(rows[0])
        self._remember(entry)
        return entry

    def _remember(self, entry: CacheEntry) -> None:
        self._recent[entry.key] = entry
        self._recent.move_to_end(entry.key)
        if len(self._recent) > KNOWN_ENTRIES_KEPT:
            self._recent.popitem(last=False)

    async def put(self, entry: CacheEntry) -> None:
        self._recent.pop(entry.key, None)
        await self._query(
            "INSERT OR REPLACE INTO archives VALUES (?, ?, ?, ?)",
            (entry.key, entry.size, entry.last_hit, entry.to_json()),
        )

    async def touch(self, hits: Mapping[str, float]) -> None:
        """Record last hits (key -> time) in one transaction; unknown keys are ignored."""
        await asyncio.to_thread(self._touch, [(when, key) for key, when in hits.items()])

    def _touch(self, rows: list[tuple[float, str]]) -> None:
        with self._lock:
            if self._db is None:
                raise RuntimeError("the download index is not open")
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("UPDATE archives SET last_hit = ? WHERE key = ?", rows)

    async def remove(self, key: str) -> None:
        self._recent.pop(key, None)
        await self._query("DELETE FROM archives WHERE key = ?", (key,))

    async def least_recent(self, limit: int) -> list[CacheEntry]:
        rows = await self._query("SELECT entry, last_hit FROM archives ORDER BY last_hit LIMIT ?", (limit,))
        return [self._entry(row) for row in rows]

    async def totals(self) -> tuple[int, int]:
        rows = await self._query("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM archives")
        count, total = rows[0]
        assert isinstance(count, int) and isinstance(total, int)
        return count, total

    async def all_entries(self) -> list[CacheEntry]:
        rows = await self._query("SELECT entry, last_hit FROM archives")
        return [self._entry(row) for row in rows]

    async def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class RedisIndex:
    """The shared index: a hash of entries (JSON) and a sorted set of last hits, under a prefix.

    Every call goes through the app's `RedisLink` (short timeouts, fails fast while Redis is
    down with `RedisUnavailable`); the download service then carries on without the cache.
    """

    name = "redis"

    def __init__(self, link: RedisLink, prefix: str = "archive-catalog:downloads") -> None:
        self._link = link
        self._entries = f"{prefix}:entries"
        self._lru = f"{prefix}:lru"

    async def get(self, key: str) -> CacheEntry | None:
        raw = await self._link.run(lambda c: c.hget(self._entries, key))
        return CacheEntry.from_json(raw) if raw is not None else None

    async def put(self, entry: CacheEntry) -> None:
        data = entry.to_json()  # last_hit inside is not read back: the sorted set holds it

        async def put(client: Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hset(self._entries, entry.key, data)
                pipe.zadd(self._lru, {entry.key: entry.last_hit})
                await pipe.execute()

        await self._link.run(put)

    async def touch(self, hits: Mapping[str, float]) -> None:
        """Record last hits (key -> time); keys no longer in the index are not added back."""
        mapping = dict(hits)
        await self._link.run(lambda c: c.zadd(self._lru, mapping, xx=True))

    async def remove(self, key: str) -> None:
        async def remove(client: Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hdel(self._entries, key)
                pipe.zrem(self._lru, key)
                await pipe.execute()

        await self._link.run(remove)

    async def _with_last_hits(self, pairs: Any) -> list[CacheEntry]:
        if not pairs:
            return []
        keys = [k.decode() if isinstance(k, bytes) else k for k, _ in pairs]
        raws = await self._link.run(lambda c: c.hmget(self._entries, keys))
        out = []
        for (_, score), raw in zip(pairs, raws, strict=True):
            if raw is not None:
                out.append(CacheEntry.from_json(raw, float(score)))
        return out

    async def least_recent(self, limit: int) -> list[CacheEntry]:
        pairs = await self._link.run(lambda c: c.zrange(self._lru, 0, limit - 1, withscores=True))
        return await self._with_last_hits(pairs)

    async def totals(self) -> tuple[int, int]:
        entries = await self.all_entries()
        return len(entries), sum(e.size for e in entries)

    async def all_entries(self) -> list[CacheEntry]:
        pairs = await self._link.run(lambda c: c.zrange(self._lru, 0, -1, withscores=True))
        return await self._with_last_hits(pairs)

    async def open(self) -> None:
        """The Redis client belongs to the app's `RedisLink`, opened by the cluster context."""

    async def close(self) -> None:
        """The Redis client belongs to the app's `RedisLink`."""


class DownloadStore:
    """Archives on disk + their index; bounded by `max_bytes`, least recently used out first."""

    def __init__(self, folder: Path, index: DownloadIndex, max_bytes: int) -> None:
        self.folder = folder
        self.index = index
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        folder.mkdir(parents=True, exist_ok=True)
        self._evict_lock = asyncio.Lock()
        self._touched: dict[str, float] = {}  # last hits not yet written to the index
        self._touches_flushed = time.monotonic()

    def path_of(self, entry: CacheEntry) -> Path:
        return self.folder / entry.file

    async def open(self, stale_temp_age_s: float) -> int:
        """Open the index and remove leftovers: temp files of interrupted builds and archives no
        index entry names (only those older than `stale_temp_age_s`, which other instances
        sharing the folder may still be writing). Returns how many files were removed."""
        await self.index.open()
        removed = await asyncio.to_thread(self.remove_leftover_temps, stale_temp_age_s)
        try:
            removed += await self.remove_orphans(stale_temp_age_s)
        except Exception as exc:  # the index is unreachable (Redis down): try again at the next start
            log.warning("Download cache: orphan check skipped (%s)", exc)
        return removed

    async def lookup(self, key: str) -> CachedArchive | None:
        """The cached archive, open (the caller closes it), or None; counts hits and misses."""
        entry = await self.index.get(key)
        if entry is not None:
            path = self.path_of(entry)
            opened = await open_off_loop(_open_archive, str(path))
            if opened is not None:
                self.hits += 1
                self._touched[key] = time.time()
                if time.monotonic() - self._touches_flushed >= TOUCH_FLUSH_S:
                    await self.flush_touches()
                return CachedArchive(path, *opened)
            log.warning("Download cache entry %s has no file any more; rebuilding (intermittent miss)", key)
            self._touched.pop(key, None)
            await self.index.remove(key)
        self.misses += 1
        return None

    async def flush_touches(self) -> None:
        """Write the last hits recorded since the previous flush to the index; if the index is
        unreachable they are dropped (the eviction order is then a little off, nothing else)."""
        touched, self._touched = self._touched, {}
        self._touches_flushed = time.monotonic()
        if touched:
            try:
                await self.index.touch(touched)
            except Exception as exc:
                log.warning("Download cache: last-hit times of %d archive(s) not recorded (%s)", len(touched), exc)

    async def close(self) -> None:
        """Write what is pending and close the index."""
        try:
            await self.flush_touches()
        finally:
            await self.index.close()

    def new_temp(self) -> Path:
        return self.folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"

    async def commit(
        self, temp: Path, key: str, extension: str, size: int, site: str = "", models: tuple[str, ...] = ()
    ) -> bool:
        """Move a complete temp file into place and index it; False (and deleted) when too big."""
        if size > self.max_bytes:
            discard(temp)
            return False
        name = f"{key}.{extension}"
        await asyncio.to_thread(os.replace, temp, self.folder / name)
        now = time.time()
        try:
            await self.index.put(CacheEntry(key, name, size, now, now, site, models))
        except BaseException:
            discard(self.folder / name)  # no entry names it: it must not sit outside the size bound
            raise
        await self.evict(keep=key)
        return True

    async def store_bytes(
        self, key: str, extension: str, data: bytes | bytearray, site: str = "", models: tuple[str, ...] = ()
    ) -> bool:
        temp = self.new_temp()
        try:
            await asyncio.to_thread(temp.write_bytes, data)
            return await self.commit(temp, key, extension, len(data), site, models)
        except BaseException:
            discard(temp)
            raise

    async def evict(self, keep: str | None = None) -> int:
        """Drop least recently used entries until the total fits; returns how many went."""
        dropped = 0
        async with self._evict_lock:
            await self.flush_touches()  # least recently used by the hits so far
            count, total = await self.index.totals()
            while total > self.max_bytes and count > 0:
                candidates = [e for e in await self.index.least_recent(16) if e.key != keep]
                if not candidates:
                    break
                for entry in candidates:
                    if total <= self.max_bytes:
                        break
                    await self.index.remove(entry.key)
                    self._touched.pop(entry.key, None)
                    discard(self.path_of(entry))
                    total -= entry.size
                    count -= 1
                    dropped += 1
        if dropped:
            log.info("Download cache evicted %d archive(s)", dropped)
        return dropped

    async def purge(self, site: str, model: str | None) -> int:
        """Drop every archive that may hold media of `site`/`model` (after a delete or restore)."""
        dropped = 0
        for entry in await self.index.all_entries():
            if entry.shows(site, model):
                await self.index.remove(entry.key)
                self._touched.pop(entry.key, None)
                discard(self.path_of(entry))
                dropped += 1
        return dropped

    async def clear(self) -> int:
        entries = await self.index.all_entries()
        for entry in entries:
            await self.index.remove(entry.key)
            discard(self.path_of(entry))
        self._touched.clear()
        return len(entries)

    def remove_leftover_temps(self, min_age_s: float = 0.0) -> int:
        """Delete temp files an interrupted process left behind (run at start).

        With a shared cache folder, `min_age_s` spares files other instances are writing now.
        """
        return self._discard_where(lambda name: name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX), min_age_s)

    async def remove_orphans(self, min_age_s: float = 0.0) -> int:
        """Delete archive files no index entry names (a crash between rename and index, an
        index emptied elsewhere), so they cannot fill the disk outside the size bound."""
        known = {entry.file for entry in await self.index.all_entries()}
        return await asyncio.to_thread(self._remove_unknown, known, min_age_s)

    def _remove_unknown(self, known: set[str], min_age_s: float) -> int:
        return self._discard_where(lambda name: name not in known and bool(ARCHIVE_NAME.fullmatch(name)), min_age_s)

    def _discard_where(self, doomed: Callable[[str], bool], min_age_s: float) -> int:
        """Delete the files of the cache folder whose name is `doomed` and that are old enough."""
        removed = 0
        now = time.time()
        with os.scandir(self.folder) as entries:
            for item in entries:
                if not doomed(item.name):
                    continue
                with contextlib.suppress(OSError):
                    if now - item.stat().st_mtime >= min_age_s:
                        discard(Path(item.path))
                        removed += 1
        return removed

    def temp_files(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if p.name.startswith(TEMP_PREFIX))

    async def stats(self) -> dict[str, object]:
        count, total = await self.index.totals()
        return {
            "entries": count,
            "bytes": total,
            "max_bytes": self.max_bytes,
            "hits": self.hits,
            "misses": self.misses,
            "index": self.index.name,
        }


@dataclass(frozen=True, slots=True)
class CachedArchive:
    """A cache hit: the archive's path and its open file and status (the caller closes it)."""

    path: Path
    handle: BinaryIO
    info: os.stat_result

    def close(self) -> None:
        self.handle.close()


def _open_archive(path: str) -> tuple[BinaryIO, os.stat_result] | None:
    """The archive opened (`open_regular`: no symlink followed) with its status; None if gone."""
    try:
        return open_regular(path)
    except NotFound:
        return None


def discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
