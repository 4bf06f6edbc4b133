"""TTL + LRU cache: eviction, expiry with an injected clock, single-flight, failures."""

from __future__ import annotations

import asyncio

import pytest

from server.cache.ttl import TTLCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _value(v: str) -> str:
    return v


async def test_least_recently_used_entry_is_evicted_at_max_size() -> None:
    cache: TTLCache[str, str] = TTLCache("t", max_size=2)
    await cache.get_or_compute("a", lambda: _value("A"))
    await cache.get_or_compute("b", lambda: _value("B"))
    assert cache.lookup("a") == "A"  # a is now the most recently used
    await cache.get_or_compute("c", lambda: _value("C"))
    assert cache.lookup("b") is None
    assert cache.lookup("a") == "A" and cache.lookup("c") == "C"
    assert len(cache) == 2


async def test_entries_expire_after_ttl_and_sweep_drops_them() -> None:
    clock = FakeClock()
    cache: TTLCache[str, str] = TTLCache("t", max_size=10, ttl=1800, clock=clock)
    await cache.get_or_compute("a", lambda: _value("A"))
    clock.now += 1799
    assert cache.lookup("a") == "A"
    await cache.get_or_compute("b", lambda: _value("B"))
    clock.now += 2
    assert cache.lookup("a") is None  # expired, still stored until swept
    assert cache.sweep() == 1
    assert len(cache) == 1 and cache.lookup("b") == "B"


async def test_hits_and_misses_are_counted() -> None:
    cache: TTLCache[str, str] = TTLCache("t", max_size=10)
    await cache.get_or_compute("a", lambda: _value("A"))
    await cache.get_or_compute("a", lambda: _value("A"))
    await cache.get_or_compute("a", lambda: _value("A"))
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["size"], stats["max_size"]) == (2, 1, 1, 10)


async def test_concurrent_misses_compute_once() -> None:
    cache: TTLCache[str, str] = TTLCache("t", max_size=10)
    calls = 0
    release = asyncio.Event()

    async def slow() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "V"

    waiters = [asyncio.create_task(cache.get_or_compute("k", slow)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiters) == ["V"] * 50
    assert calls == 1


async def test_a_failed_fill_caches_nothing_and_reaches_every_waiter() -> None:
    cache: TTLCache[str, str] = TTLCache("t", max_size=10)
    release = asyncio.Event()

    async def failing() -> str:
        await release.wait()
        raise RuntimeError("disk on fire")

    waiters = [asyncio.create_task(cache.get_or_compute("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert len(cache) == 0
    assert await cache.get_or_compute("k", lambda: _value("ok")) == "ok"


async def test_a_cancelled_caller_does_not_cancel_the_fill_for_others() -> None:
    cache: TTLCache[str, str] = TTLCache("t", max_size=10)
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "V"

    first = asyncio.create_task(cache.get_or_compute("k", slow))
    second = asyncio.create_task(cache.get_or_compute("k", slow))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == "V"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert cache.lookup("k") == "V"


async def test_stale_entries_are_misses_and_uncacheable_values_are_not_stored() -> None:
    cache: TTLCache[str, int] = TTLCache("t", max_size=10)
    version = 1

    async def compute() -> int:
        return version

    assert await cache.get_or_compute("k", compute, is_fresh=lambda v: v == version) == 1
    version = 2
    assert await cache.get_or_compute("k", compute, is_fresh=lambda v: v == version) == 2
    assert await cache.get_or_compute("x", compute, cacheable=lambda v: False) == 2
    assert cache.lookup("x") is None
