"""What several instances share through Redis: the connection and its health, the event
relay, and cluster-wide locks.

`RedisLink` owns one redis.asyncio client. A monitor pings it every second; the link is
`up` or `down`, with one warning when Redis goes away and one when it is back. Every call
through `link.run` has a short timeout and fails fast while the link is down, so no request
waits on a dead Redis: callers fall back to local behaviour. Its connections are a bounded
pool that a burst of calls waits on (within the call's timeout) rather than overflows: an
overflowing pool would take the link down with Redis healthy.

`EventRelay` makes the in-process `EventBus` cluster-wide: events published here (stamped
with this instance's id) go to a Redis channel, one after another in the order they happened
(a scan's last progress must not overtake its `scan.finished`); events from other instances
arrive through a subscription and are published locally. `ClusterLock` is a Redis lock with expiry and
renewal, so a crashed holder blocks nobody for longer than the expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson
import redis.asyncio as redis_asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from server.infra.events import Event, EventBus, from_json

log = logging.getLogger("archive_catalog")
T = TypeVar("T")

CALL_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 64  # pooled; more concurrent calls wait for one (redis-py 8 fails past 100 by default)
OUTBOX_EVENTS = 10_000  # events waiting to go out; past it (Redis far too slow) new ones are dropped
PING_INTERVAL_S = 1.0
KEY_PREFIX = "archive-catalog"
EVENTS_CHANNEL = f"{KEY_PREFIX}:events"


class RedisUnavailable(Exception):
    """Redis did not answer in time (or is known to be down): use local behaviour."""


def redact(url: str) -> str:
    """The URL without its password, for logs and the banner."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user + ':***' if user else '***'}@{host}"


class RedisLink:
    def __init__(self, url: str, instance_id: str | None = None) -> None:
        self.url = url
        self.instance_id = instance_id or secrets.token_hex(6)
        # one immediate retry on a connection error: after Redis restarts, the first command
        # on a stale pooled connection fails although Redis is back
        pool = redis_asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=CALL_TIMEOUT_S,
            socket_timeout=CALL_TIMEOUT_S,
            socket_connect_timeout=CALL_TIMEOUT_S,
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError],
        )
        self.client: redis_asyncio.Redis = redis_asyncio.Redis.from_pool(pool)  # closed with the client
        self.up = False
        self._announced: bool | None = None

    @property
    def state(self) -> str:
        return "ok" if self.up else "down"

    def _set_state(self, up: bool) -> None:
        self.up = up
        if self._announced is up:
            return
        if up:
            if self._announced is not None:
                log.warning("Redis is back at %s; shared behaviour resumes", redact(self.url))
        else:
            log.warning("Redis at %s is unreachable; running on local behaviour until it is back", redact(self.url))
        self._announced = up

    async def ping(self) -> bool:
        try:
            await asyncio.wait_for(self.client.ping(), CALL_TIMEOUT_S)
        except (TimeoutError, RedisError, OSError):
            self._set_state(False)
            return False
        self._set_state(True)
        return True

    async def run(self, operation: Callable[[redis_asyncio.Redis], Awaitable[T]]) -> T:
        """One Redis operation with a short timeout; RedisUnavailable when down or slow."""
        if not self.up:
            raise RedisUnavailable("Redis is down")
        try:
            return await asyncio.wait_for(operation(self.client), CALL_TIMEOUT_S)
        except (TimeoutError, RedisError, OSError) as exc:
            self._set_state(False)
            raise RedisUnavailable(str(exc) or type(exc).__name__) from None

    async def monitor(self) -> None:
        while True:
            await self.ping()
            await asyncio.sleep(PING_INTERVAL_S)

    async def close(self) -> None:
        await self.client.aclose()


class EventRelay:
    """Carries EventBus events between instances over one Redis pub/sub channel."""

    def __init__(self, link: RedisLink, bus: EventBus, channel: str = EVENTS_CHANNEL) -> None:
        self.link = link
        self.bus = bus
        self.channel = channel
        self._unsubscribe = bus.subscribe(self._outgoing)
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(OUTBOX_EVENTS)

    def _outgoing(self, event: Event) -> None:
        if event.origin is not None or not self.link.up:  # only this instance's own events go out
            return
        payload = orjson.dumps({**event.to_json(), "origin": self.link.instance_id})
        try:
            self._outbox.put_nowait(payload)
        except asyncio.QueueFull:
            log.debug("event relay: %d events waiting for Redis; dropped %s", OUTBOX_EVENTS, payload[:80])

    async def send(self) -> None:
        """Publish this instance's events, one at a time in the order they happened (concurrent
        publishes go over different pooled connections and may arrive in any order)."""
        while True:
            payload = await self._outbox.get()
            with contextlib.suppress(RedisUnavailable):
                await self.link.run(lambda client: client.publish(self.channel, payload))  # noqa: B023 - awaited here

    async def listen(self) -> None:
        """Subscribe (again after every outage) and publish other instances' events here."""
        while True:
            if not self.link.up:
                await asyncio.sleep(PING_INTERVAL_S / 2)
                continue
            pubsub = self.link.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(timeout=PING_INTERVAL_S)
                    if message is None:
                        if not self.link.up:
                            break
                        continue
                    self._incoming(message.get("data"))
            except (RedisError, OSError):
                self.link._set_state(False)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2

    def _incoming(self, data: object) -> None:
        if not isinstance(data, bytes | str):
            return
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        origin = event.get("origin")
        if isinstance(origin, str) and origin != self.link.instance_id:
            received = from_json(event, origin)
            if received is not None:
                self.bus.publish(received)

    def close(self) -> None:
        """Stop relaying this instance's events (what still waits to go out is dropped with `send`)."""
        self._unsubscribe()


_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class ClusterLock:
    """A named lock held by one instance at a time, expiring unless renewed."""

    def __init__(self, link: RedisLink, name: str, ttl_s: float = 15.0) -> None:
        self.link = link
        self.key = f"{KEY_PREFIX}:lock:{name}"
        self.ttl_ms = int(ttl_s * 1000)
        self.token = f"{link.instance_id}:{secrets.token_hex(8)}"

    async def acquire(self) -> bool:
        return bool(await self.link.run(lambda c: c.set(self.key, self.token, nx=True, px=self.ttl_ms)))

    async def renew(self) -> bool:
        return bool(await self.link.run(lambda c: c.eval(_RENEW, 1, self.key, self.token, self.ttl_ms)))

    async def release(self) -> None:
        with contextlib.suppress(RedisUnavailable):
            await self.link.run(lambda c: c.eval(_RELEASE, 1, self.key, self.token))

    async def holder(self) -> str | None:
        value = await self.link.run(lambda c: c.get(self.key))
        return value.decode() if isinstance(value, bytes) else value
