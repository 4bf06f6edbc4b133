"""A bounded in-memory cache with TTL, least-recently-used eviction and single-flight fills.

Lookups take a freshness predicate, so an entry is served only while the disk it came from is
unchanged; a stale or expired entry counts as a miss. Concurrent misses for one key share one
computation (the others await its future), and a failed computation caches nothing. The clock
is injected so tests can move time without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_TTL_S = 1800.0
SWEEP_INTERVAL_S = 300.0


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    expires_at: float


def _always_fresh(_value: object) -> bool:
    return True


def _retrieve_exception(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # the callers re-raise it; this only silences "never retrieved"


class TTLCache(Generic[K, V]):
    def __init__(
        self,
        name: str,
        max_size: int,
        ttl: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.max_size = max_size
        self.ttl = ttl
        self.hits = 0
        self.misses = 0
        self._clock = clock
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._inflight: dict[K, asyncio.Future[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: K, is_fresh: Callable[[V], bool] = _always_fresh) -> V | None:
        """The cached value if present, unexpired and fresh; counts a hit or a miss."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at > self._clock() and is_fresh(entry.value):
            self._entries.move_to_end(key)
            self.hits += 1
            return entry.value
        self.misses += 1
        return None

    def store(self, key: K, value: V) -> None:
        self._entries[key] = _Entry(value, self._clock() + self.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    async def get_or_compute(
        self,
        key: K,
        compute: Callable[[], Awaitable[V]],
        is_fresh: Callable[[V], bool] = _always_fresh,
        cacheable: Callable[[V], bool] = _always_fresh,
    ) -> V:
        """Serve a fresh entry, or compute it once however many callers miss at the same time."""
        value = self.lookup(key, is_fresh)
        if value is not None:
            return value
        return await self.compute_once(key, compute, cacheable)

    async def compute_once(
        self, key: K, compute: Callable[[], Awaitable[V]], cacheable: Callable[[V], bool] = _always_fresh
    ) -> V:
        """After a `lookup` missed: compute (or join the computation already running) and store.

        `lookup` then `compute_once` is `get_or_compute` for callers whose hit path must not
        build the `compute` closure (the catalog's hot path).
        """
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fill(key, compute, cacheable))
            task.add_done_callback(_retrieve_exception)
            self._inflight[key] = task
        # shield: a caller that goes away does not cancel the fill the others wait for
        return await asyncio.shield(task)

    async def _fill(self, key: K, compute: Callable[[], Awaitable[V]], cacheable: Callable[[V], bool]) -> V:
        try:
            value = await compute()
            if cacheable(value):
                self.store(key, value)
            return value
        finally:
            del self._inflight[key]

    def invalidate(self, key: K) -> None:
        self._entries.pop(key, None)

    def invalidate_where(self, predicate: Callable[[K], bool]) -> int:
        doomed = [key for key in self._entries if predicate(key)]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    def clear(self) -> None:
        self._entries.clear()

    def sweep(self) -> int:
        """Drop expired entries; returns how many went."""
        now = self._clock()
        return self.invalidate_where(lambda key: self._entries[key].expires_at <= now)

    def stats(self) -> dict[str, float | int]:
        return {
            "size": len(self._entries),
            "max_size": self.max_size,
            "ttl": self.ttl,
            "hits": self.hits,
            "misses": self.misses,
        }
