"""The Redis index against the real server at 127.0.0.1:6379 (never skipped)."""

from __future__ import annotations

import asyncio
import io
import secrets
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

import server.app
from server import keys
from server.cache.downloads import CacheEntry, RedisIndex
from server.infra.cluster import RedisLink, RedisUnavailable

from .conftest import ClientFactory
from .http_support import get, settle
from .redis_support import private_redis, require_redis

REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.redis


@pytest.fixture
async def prefix(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A key prefix of this test's own, used by the app too; every key under it deleted after."""
    require_redis()
    value = f"test-archive-catalog:{secrets.token_hex(6)}"
    monkeypatch.setattr(server.app, "REDIS_DOWNLOADS_PREFIX", value)
    yield value
    client = Redis.from_url(REDIS_URL)
    try:
        found = [key async for key in client.scan_iter(match=f"{value}:*")]
        if found:
            await client.delete(*found)
    finally:
        await client.aclose()


async def test_redis_index_operations(prefix: str) -> None:
    link = RedisLink(REDIS_URL)
    try:
        assert await link.ping()
        index = RedisIndex(link, prefix)
        assert await index.get("a") is None
        await index.put(CacheEntry("a", "a.zip", 100, 1.0, 10.0, "site", ("patreon/ana",)))
        await index.put(CacheEntry("b", "b.zip", 50, 2.0, 5.0))
        entry = await index.get("a")
        assert entry is not None and (entry.file, entry.size, entry.created) == ("a.zip", 100, 1.0)
        assert (entry.site, entry.models) == ("site", ("patreon/ana",))
        assert await index.totals() == (2, 150)
        assert [e.key for e in await index.least_recent(10)] == ["b", "a"]
        await index.touch({"b": 20.0})
        assert [e.key for e in await index.least_recent(1)] == ["a"]
        await index.remove("a")
        assert await index.get("a") is None
        assert [(e.key, e.last_hit) for e in await index.all_entries()] == [("b", 20.0)]
        await index.touch({"gone": 30.0})  # touching a missing entry does not create one
        assert await index.totals() == (1, 50)
    finally:
        await link.close()


async def test_two_instances_share_one_cache_through_redis(make_client: ClientFactory, prefix: str) -> None:
    first = await make_client(redis_url=REDIS_URL, threshold_mb=0)
    _, headers, body = await get(first, "/api/download?site=alpha&model=ana")
    assert headers["X-Cache"] == "MISS"
    await settle(first)
    stats = (await (await first.get("/api/cache_stats")).json())["download_cache"]
    assert stats["index"] == "redis" and stats["entries"] == 1 and stats["bytes"] == len(body)
    second = await make_client(redis_url=REDIS_URL)  # same cache dir and Redis: one service
    _, headers, again = await get(second, "/api/download?site=alpha&model=ana")
    assert headers["X-Cache"] == "HIT" and again == body
    raw = Redis.from_url(REDIS_URL)
    try:
        assert await raw.hexists(f"{prefix}:entries", headers["ETag"].strip('"'))
    finally:
        await raw.aclose()


async def test_redis_index_rebuilds_a_missing_file_and_evicts(make_client: ClientFactory, prefix: str) -> None:
    client = await make_client(redis_url=REDIS_URL)
    _, _, body = await get(client, "/api/download?site=alpha&model=ana")
    await settle(client)
    store = client.app[keys.DOWNLOADS].store
    (entry,) = await store.index.all_entries()
    store.path_of(entry).unlink()
    _, headers, again = await get(client, "/api/download?site=alpha&model=ana")
    assert headers["X-Cache"] == "MISS" and again == body
    await settle(client)
    store.max_bytes = len(body) + 10
    await get(client, "/api/download?site=alpha&model=bruno")
    await settle(client)
    assert [e.file.startswith(entry.key) for e in await store.index.all_entries()] == [False]


async def test_an_unreachable_redis_degrades_to_uncached_downloads(
    make_client: ClientFactory, prefix: str, tmp_path: Path
) -> None:
    client = await make_client(redis_url="redis://127.0.0.1:1/0")
    stats = (await (await client.get("/api/cache_stats")).json())["download_cache"]
    assert stats["index"] == "redis" and stats["error"] == "index unavailable"
    for strategy_threshold in (100, 0):
        client.app[keys.DOWNLOADS].threshold_bytes = strategy_threshold * 1_000_000
        status, headers, body = await get(client, "/api/download?site=alpha&model=ana")
        assert status == 200 and headers["X-Cache"] == "MISS"
        assert zipfile.ZipFile(io.BytesIO(body)).testzip() is None
        await settle(client)
    assert client.app[keys.DOWNLOADS].store.temp_files() == []
    with pytest.raises(RedisUnavailable):
        await client.app[keys.DOWNLOADS].store.index.totals()


async def test_a_redis_outage_mid_service_degrades_to_uncached_downloads(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    with private_redis(tmp_path) as redis_server:
        client = await make_client(redis_url=redis_server.url, threshold_mb=0)
        url = "/api/download?site=alpha&model=ana"
        _, headers, body = await get(client, url)
        await settle(client)
        _, headers, _ = await get(client, url)
        assert headers["X-Cache"] == "HIT"
        redis_server.kill()
        for threshold in (100, 0):  # both strategies, with the index gone
            client.app[keys.DOWNLOADS].threshold_bytes = threshold * 1_000_000
            status, headers, again = await get(client, url)
            assert (status, headers["X-Cache"]) == (200, "MISS") and again == body
            await settle(client)
        store = client.app[keys.DOWNLOADS].store
        assert store.temp_files() == []
        archives = {p.name for p in store.folder.iterdir() if p.suffix == ".zip"}
        assert archives <= {f"{headers['ETag'].strip(chr(34))}.zip"}  # no copy left that no index names
        redis_server.start()  # back on the same port: the (new, empty) index is used again
        for _ in range(100):  # the link notices within a ping or two (stale connections included)
            _, headers, _ = await get(client, url)
            await settle(client)
            if headers["X-Cache"] == "HIT":
                break
            await asyncio.sleep(0.05)
        assert headers["X-Cache"] == "HIT"
