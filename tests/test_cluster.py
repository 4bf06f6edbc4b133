"""Several instances sharing a real Redis: event relay, health, outage and recovery, locks."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from server import keys
from server.infra.cluster import ClusterLock, RedisLink, RedisUnavailable, redact
from server.infra.events import Event, LibraryChanged

from .conftest import Client, ClientFactory
from .helpers import eventually
from .redis_support import SHARED_URL, private_redis, require_redis


def test_redact_hides_passwords() -> None:
    assert redact("redis://:secret@host:6379/0") == "redis://***@host:6379/0"
    assert redact("redis://user:secret@host/0") == "redis://user:***@host/0"
    assert redact("redis://host:6379") == "redis://host:6379"


async def test_events_reach_the_other_instance(make_client: ClientFactory) -> None:
    require_redis()
    first = await make_client(redis_url=SHARED_URL)
    second = await make_client(redis_url=SHARED_URL)
    received: list[Event] = []
    second.app[keys.EVENTS].subscribe(received.append)
    await eventually(lambda: _healthy(first))
    await eventually(lambda: _healthy(second))
    await asyncio.sleep(0.2)  # let both subscriptions settle

    first.app[keys.EVENTS].publish(LibraryChanged(site="alpha", model="ana"))

    async def arrived() -> bool:
        return any(isinstance(e, LibraryChanged) and e.model == "ana" and e.origin is not None for e in received)

    await eventually(arrived)
    arrived_event = next(e for e in received if isinstance(e, LibraryChanged))
    assert arrived_event.site == "alpha"


async def test_events_reach_the_other_instance_in_the_order_they_happened(make_client: ClientFactory) -> None:
    """A scan's last progress must not overtake its `scan.finished` on the way: the other
    instance would then take the scan for running again (and refuse to start one)."""
    require_redis()
    first = await make_client(redis_url=SHARED_URL)
    second = await make_client(redis_url=SHARED_URL)
    received: list[str] = []
    second.app[keys.EVENTS].subscribe(
        lambda e: received.append(e.model) if isinstance(e, LibraryChanged) and e.origin is not None else None
    )
    await eventually(lambda: _healthy(first))
    await eventually(lambda: _healthy(second))
    await asyncio.sleep(0.2)  # let both subscriptions settle

    sent = [f"m{index}" for index in range(300)]
    for model in sent:  # published in one go, as a scan's events are
        first.app[keys.EVENTS].publish(LibraryChanged(site="order", model=model))

    await eventually(lambda: len(received) == len(sent), within=15)
    assert received == sent


async def test_a_delete_on_one_instance_invalidates_the_other(make_client: ClientFactory, library_root: Path) -> None:
    require_redis()
    first = await make_client(redis_url=SHARED_URL, watch_interval_s=3600)  # only the relay can tell B
    second = await make_client(redis_url=SHARED_URL, watch_interval_s=3600)
    await eventually(lambda: _healthy(first))
    await eventually(lambda: _healthy(second))
    await asyncio.sleep(0.2)
    assert (await (await second.get("/api/models?site=alpha")).json())["models"][1]["images"] == 2
    assert (await first.delete("/api/file?site=alpha&model=bruno&path=a.jpg")).status == 200

    async def shows_the_delete() -> bool:
        body = await (await second.get("/api/models?site=alpha")).json()
        return bool(body["models"][1]["images"] == 1)

    await eventually(shows_the_delete)


async def _healthy(client: Client) -> bool:
    body = await (await client.get("/healthz")).json()
    return bool(body["redis"] == "ok")


async def test_redis_outage_degrades_then_recovers(make_client: ClientFactory, tmp_path: Path) -> None:
    with private_redis(tmp_path) as redis_server:
        client = await make_client(redis_url=redis_server.url)
        await eventually(lambda: _healthy(client))
        redis_server.kill()

        async def down() -> bool:
            body = await (await client.get("/healthz")).json()
            return bool(body["status"] == "ok" and body["redis"] == "down")

        await eventually(down)
        started = time.monotonic()
        response = await client.get("/api/models?site=alpha")
        assert response.status == 200  # requests keep working on local behaviour
        assert time.monotonic() - started < 5, "a request waited on the dead Redis"
        assert (await client.delete("/api/file?site=alpha&model=bruno&path=a.jpg")).status == 200

        assert "archive_catalog_redis_up 0.0" in await (await client.get("/metrics")).text()
        redis_server.start()  # same port
        await eventually(lambda: _healthy(client))
        assert "archive_catalog_redis_up 1.0" in await (await client.get("/metrics")).text()


async def test_unreachable_redis_at_start_is_down_not_fatal(make_client: ClientFactory) -> None:
    client = await make_client(redis_url="redis://127.0.0.1:1/0")
    body = await (await client.get("/healthz")).json()
    assert (body["status"], body["redis"]) == ("ok", "down")
    assert (await client.get("/api/sites")).status == 200


async def test_cluster_lock_is_exclusive_and_expires(tmp_path: Path) -> None:
    require_redis()
    holder, other = RedisLink(SHARED_URL), RedisLink(SHARED_URL)
    try:
        assert await holder.ping() and await other.ping()
        name = f"test-{time.time_ns()}"
        first = ClusterLock(holder, name, ttl_s=0.5)
        second = ClusterLock(other, name, ttl_s=0.5)
        assert await first.acquire()
        assert not await second.acquire()
        assert await first.renew()
        assert await first.holder() == first.token
        # the holder "dies": it stops renewing; the lock expires by itself
        await eventually(second.acquire, within=5)
        assert not await first.renew()  # it no longer owns the lock
        await first.release()  # releasing someone else's lock does nothing
        assert await second.holder() == second.token
        await second.release()
        assert await second.holder() is None
    finally:
        await holder.close()
        await other.close()


async def test_calls_fail_fast_while_down() -> None:
    link = RedisLink("redis://127.0.0.1:1/0")
    try:
        assert not await link.ping()
        with pytest.raises(RedisUnavailable):
            await link.run(lambda c: c.get("x"))
    finally:
        await link.close()
