"""Bounded load tests on loopback against a real server process (marked `load`).

Each stops by itself: every wait has a hard bound, and the assertions are about behaviour
(every request answered correctly, memory bounded), never about wall-clock speed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import aiohttp
import pytest

from .helpers import age_folders, make_model, write
from .server_process import ServerProcess, rss_kib, running_server

pytestmark = pytest.mark.load

BIG_FILE_BYTES = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("load")
    library = folder / "library"
    for index in range(60):
        make_model(library, "site", f"model-{index}", [f"{n}.jpg" for n in range(5)], seed=index)
    write(library / "site" / "videos" / "big.mp4", b"\0" * BIG_FILE_BYTES)
    age_folders(library)
    with running_server(library, folder / "cache") as running:
        yield running


async def test_a_thousand_concurrent_keep_alive_connections(server: ServerProcess) -> None:
    url = f"{server.url}/api/models?site=site&limit=20"
    connector = aiohttp.TCPConnector(limit=1000, limit_per_host=1000)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def client() -> list[int]:
            statuses = []
            for _ in range(3):
                async with session.get(url) as response:
                    await response.read()
                    statuses.append(response.status)
            return statuses

        async with asyncio.timeout(90):
            results = await asyncio.gather(*(client() for _ in range(1000)))
    assert all(status == 200 for statuses in results for status in statuses)
    assert len(results) == 1000


async def test_slow_readers_of_large_files_do_not_starve_the_catalog(server: ServerProcess) -> None:
    rss_before = rss_kib(server.pid)
    readers: list[socket.socket] = []
    try:
        for _ in range(100):  # 100 clients that start a 32 MB download and then read nothing
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"GET /media/site/videos/big.mp4 HTTP/1.1\r\nHost: x\r\n\r\n")
            readers.append(sock)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            for index in range(50):
                async with session.get(f"{server.url}/api/model?site=site&model=model-{index}") as response:
                    assert response.status == 200
                    assert len((await response.json())["images"]) == 5
        growth_mib = (rss_kib(server.pid) - rss_before) / 1024
        assert growth_mib < 64, f"server memory grew {growth_mib:.0f} MiB with 100 stalled downloads"
    finally:
        for sock in readers:
            sock.close()


async def test_slow_header_senders_do_not_exhaust_the_server(server: ServerProcess) -> None:
    dribblers: list[socket.socket] = []
    try:
        for _ in range(300):  # each sends half a request and then stalls
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"GET /api/sites HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            dribblers.append(sock)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            for round_ in range(20):
                for sock in dribblers[round_::20]:
                    sock.sendall(b"a")  # a byte now and then, never the end of the headers
                async with session.get(f"{server.url}/api/sites") as response:
                    assert response.status == 200
    finally:
        for sock in dribblers:
            sock.close()
