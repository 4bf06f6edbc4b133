"""WebSocket fan-out for live events (`GET /ws`): scan progress and library changes.

A broadcast is encoded once (orjson) and the same TEXT frame is queued for every client.
Each client has its own sender task and a short queue in which a `scan.progress` frame
replaces a progress frame still waiting at the tail (a latest-value slot), so a slow client
gets fewer progress frames, never stale ones, and never in the wrong order relative to
`scan.finished`. A client whose queue still grows past `max_pending` frames, or whose socket
accepts nothing for `stall_timeout_s`, is dropped; neither the scan nor the other clients
ever wait for it. The first frame a client gets is the `hello` snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import WSCloseCode, web

from server.infra.events import Event

log = logging.getLogger("archive_catalog")

MAX_PENDING = 256
STALL_TIMEOUT_S = 10.0
HEARTBEAT_S = 30.0


class _Client:
    __slots__ = ("dropped", "pending", "request", "tail_is_progress", "wake", "ws")

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.request = request
        self.pending: deque[str] = deque()
        self.tail_is_progress = False
        self.wake = asyncio.Event()
        self.dropped = False


class Hub:
    def __init__(
        self,
        snapshot: Callable[[], dict[str, Any]],
        *,
        max_pending: int = MAX_PENDING,
        stall_timeout_s: float = STALL_TIMEOUT_S,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.snapshot = snapshot
        self.max_pending = max_pending
        self.stall_timeout_s = stall_timeout_s
        self.heartbeat_s = heartbeat_s
        self._clients: set[_Client] = set()
        self.dropped_total = 0

    @property
    def client_count(self) -> int:
        return len(self._clients)

    # -- broadcasting ---------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Event bus subscriber (scan and library events): forward to every client."""
        self.broadcast(event.to_json())

    def broadcast(self, event: dict[str, Any]) -> None:
        if not self._clients:
            return
        frame = orjson.dumps(event).decode()
        is_progress = event.get("type") == "scan.progress"
        for client in list(self._clients):
            self._enqueue(client, frame, is_progress)

    def _enqueue(self, client: _Client, frame: str, is_progress: bool) -> None:
        if client.dropped:
            return
        if is_progress and client.tail_is_progress and client.pending:
            client.pending[-1] = frame
        else:
            client.pending.append(frame)
            if len(client.pending) > self.max_pending:
                self._drop(client, "too far behind")
                return
        client.tail_is_progress = is_progress
        client.wake.set()

    def _drop(self, client: _Client, why: str) -> None:
        if client.dropped:
            return
        client.dropped = True
        client.pending.clear()
        client.wake.set()
        self._clients.discard(client)
        self.dropped_total += 1
        log.info("ws: dropped a client (%s)", why)
        transport = client.request.transport
        if transport is not None:
            transport.abort()

    # -- one connection -------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        return {"type": "hello", "scan": self.snapshot()}

    def is_handshake(self, request: web.Request) -> bool:
        return bool(web.WebSocketResponse().can_prepare(request))

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=self.heartbeat_s, max_msg_size=64 * 1024)
        await ws.prepare(request)
        client = _Client(ws, request)
        client.pending.append(orjson.dumps(self.hello()).decode())
        client.wake.set()
        self._clients.add(client)
        sender = asyncio.create_task(self._send_loop(client))
        try:
            async for _message in ws:
                pass  # clients send nothing but pings (answered by aiohttp)
        finally:
            self._clients.discard(client)
            client.dropped = True
            client.wake.set()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws

    async def _send_loop(self, client: _Client) -> None:
        while not client.dropped:
            await client.wake.wait()
            client.wake.clear()
            while client.pending and not client.dropped:
                frame = client.pending.popleft()
                if not client.pending:
                    client.tail_is_progress = False
                try:
                    await asyncio.wait_for(client.ws.send_str(frame), self.stall_timeout_s)
                except TimeoutError:
                    self._drop(client, "stalled")
                    return
                except (ConnectionError, RuntimeError):
                    self._drop(client, "gone")
                    return

    async def close_all(self) -> None:
        """Shutdown: close every socket with GOING_AWAY (iterating over a copy)."""
        for client in list(self._clients):
            client.dropped = True
            client.wake.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown"), timeout=2.0
                )
        self._clients.clear()
