"""Live events over GET /ws: hello snapshot, event order, throttling, slow clients, shutdown."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from server import keys
from server.app import create_app
from server.config import Config
from server.infra.events import LibraryChanged

from .conftest import ClientFactory
from .scan_support import run_scan


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


async def test_hello_snapshot_on_connect(client: TestClient[Any, Any]) -> None:
    async with client.ws_connect("/ws") as ws:
        hello = await ws.receive_json(timeout=10)
    assert hello["type"] == "hello"
    assert hello["scan"]["running"] is False and hello["scan"]["phase"] == "idle"
    progress = await (await client.get("/api/scan_progress")).json()
    assert hello["scan"] == progress


async def test_event_order_and_reconnect_resync(client: TestClient[Any, Any]) -> None:
    events = await run_scan(client)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "scan.started" and kinds[-1] == "scan.finished"
    assert set(kinds[1:-1]) == {"scan.progress"}
    progress = events[1:-1]
    assert progress, "at least one progress event per scan"
    assert progress[-1]["percent"] == 100 and progress[-1]["running"] is False
    assert all(e["scan_id"] == events[0]["scan_id"] for e in events)
    percents = [e["percent"] for e in progress]
    assert percents == sorted(percents)
    finished = events[-1]
    assert {"scan_id", "groups", "total_wasted", "stats"} <= set(finished)
    # A client connecting later resyncs from the snapshot.
    async with client.ws_connect("/ws") as ws:
        hello = await ws.receive_json(timeout=10)
    assert hello["scan"]["phase"] == "done" and hello["scan"]["percent"] == 100
    assert hello["scan"]["scan_id"] == finished["scan_id"]


async def test_a_reconnect_hears_the_same_figures_as_the_live_events_and_scan_progress(
    client: TestClient[Any, Any], library_root: Path
) -> None:
    pair = b"p" * 70_000
    _write(library_root / "alpha" / "ana" / "p1.jpg", pair)
    _write(library_root / "beta" / "x" / "p2.jpg", pair)
    await run_scan(client)  # the cache learns them
    events = await run_scan(client)
    live = {k: v for k, v in events[-2].items() if k not in ("type", "library")}  # the last scan.progress
    assert events[-2]["type"] == "scan.progress" and live["phase"] == "done"
    async with client.ws_connect("/ws") as ws:  # a page reloaded after the scan
        hello = await ws.receive_json(timeout=10)
    polled = await (await client.get("/api/scan_progress")).json()
    assert hello["scan"] == polled == live
    assert live["files_found"] == events[-1]["stats"]["files"]
    assert 0 < live["cache_hits"] == live["checked"] == live["total"] <= live["files_found"]
    assert live["hash_cache_hits"] == events[-1]["stats"]["hashes"] >= live["cache_hits"]


async def test_progress_is_throttled_for_a_large_file_list(tmp_path: Path, make_client: ClientFactory) -> None:
    root = tmp_path / "lib"
    groups = 600
    for i in range(groups):  # 600 same-size pairs, 1,200 files, one batch each: 600+ progress updates
        data = i.to_bytes(4, "little") * (10 + i)
        _write(root / "s" / f"m{i % 7}" / f"a{i}.jpg", data)
        _write(root / "s" / f"m{i % 5}" / f"b{i}.png", data)
    client = await make_client(models_dir=root)
    service = client.app[keys.SCAN]
    service.batch_files = 2
    ticks = [0.0]

    def clock() -> float:  # a clock that moves 1 ms per reading: deterministic throttling
        ticks[0] += 0.001
        return ticks[0]

    service.clock = clock
    events = await run_scan(client)
    assert events[-1]["type"] == "scan.finished"
    assert events[-1]["groups"] == groups
    progress = [e for e in events if e["type"] == "scan.progress"]
    elapsed = ticks[0]  # clock readings the scan made, in fake seconds
    assert len(progress) <= elapsed / service.progress_interval_s + 4
    assert len(progress) < groups / 4  # far fewer events than updates
    assert progress[-1]["percent"] == 100


async def test_library_changed_is_forwarded(client: TestClient[Any, Any]) -> None:
    async with client.ws_connect("/ws") as ws:
        await ws.receive_json(timeout=10)
        response = await client.delete("/api/file", params={"site": "alpha", "model": "bruno", "path": "a.jpg"})
        assert response.status == 200
        event = await ws.receive_json(timeout=10)
    assert event == {"type": "library.changed", "site": "alpha", "model": "bruno"}


def _stalled_socket(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return sock


async def test_a_stalled_client_does_not_block_others_and_is_dropped(client: TestClient[Any, Any]) -> None:
    hub = client.app[keys.HUB]
    hub.max_pending = 16
    events = client.app[keys.EVENTS]
    assert client.port is not None
    stalled = await asyncio.to_thread(_stalled_socket, client.port)
    try:
        async with client.ws_connect("/ws") as ws:
            assert (await ws.receive_json(timeout=10))["type"] == "hello"
            while hub.client_count < 2:
                await asyncio.sleep(0.01)
            padding = "x" * 65536
            sent = 0
            # Each event reaches the healthy client before the next is published; the stalled
            # one never reads, so its socket buffers fill and then its queue, and it is dropped.
            while hub.dropped_total == 0:
                assert sent < 2000, "the stalled client was never dropped"
                events.publish(LibraryChanged(site=f"s{sent}", model=padding))
                received = await ws.receive_json(timeout=10)
                assert received["site"] == f"s{sent}"
                sent += 1
            assert hub.client_count == 1
            events.publish(LibraryChanged(site="after", model=None))
            assert (await ws.receive_json(timeout=10))["site"] == "after"
    finally:
        stalled.close()


async def test_progress_frames_coalesce_for_a_slow_client(client: TestClient[Any, Any]) -> None:
    hub = client.app[keys.HUB]
    async with client.ws_connect("/ws") as ws:
        await ws.receive_json(timeout=10)
        while hub.client_count < 1:
            await asyncio.sleep(0.01)
        # Published in one go (the client cannot read in between): only the latest progress
        # before each other event survives, and the order is kept.
        for i in range(50):
            hub.broadcast({"type": "scan.progress", "percent": i})
        hub.broadcast({"type": "scan.finished", "scan_id": "x"})
        hub.broadcast({"type": "scan.progress", "percent": 100})
        received = [await ws.receive_json(timeout=10) for _ in range(3)]
    assert received == [
        {"type": "scan.progress", "percent": 49},
        {"type": "scan.finished", "scan_id": "x"},
        {"type": "scan.progress", "percent": 100},
    ]


async def test_sockets_close_with_going_away_on_shutdown(make_config: Any) -> None:
    config: Config = make_config()
    server = TestServer(create_app(config))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(server.make_url("/ws")) as ws:
            assert (await ws.receive_json(timeout=10))["type"] == "hello"
            closing = asyncio.create_task(server.close())
            message = await ws.receive(timeout=10)
            assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
            assert ws.close_code == WSCloseCode.GOING_AWAY
            await closing
    finally:
        await server.close()


async def test_cross_origin_handshake_is_refused(client: TestClient[Any, Any]) -> None:
    response = await client.get(
        "/ws",
        headers={
            "Origin": "http://evil.example",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
            "Sec-WebSocket-Version": "13",
        },
    )
    assert response.status == 403
