"""Bounded load tests on loopback against a real server process (marked `load`).

Each stops by itself: every wait has a hard bound, and the assertions are about behaviour
(every request answered correctly, memory bounded), never about wall-clock speed.
"""

from __future__ import annotations

import asyncio
import io
import random
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from benchmarks.processes import ServerProcess, rss_kib

from .helpers import age_folders, make_model, write
from .server_process import running_server

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


def _big_download_library(library: Path) -> None:
    rng = random.Random(9)
    for model in ("streamed", "cached"):
        for index in range(4):
            write(library / "site" / model / f"{index}.jpg", rng.randbytes(6 * 1024 * 1024))
    for index in range(20):
        make_model(library, "site", f"small-{index}", ["1.jpg", "2.jpg"], seed=index)
    age_folders(library)


def _stalled_reader(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)  # every wait is bounded
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


async def test_slow_readers_of_large_downloads_do_not_starve_the_catalog(tmp_path: Path) -> None:
    """50 stalled readers of a streamed archive and 50 of a cached one (24 MB each); the
    catalog keeps answering, memory stays bounded, and the slots come back afterwards."""
    library = tmp_path / "library"
    _big_download_library(library)
    with running_server(library, tmp_path / "cache", "--threshold-mb", "1", "--download-max-builds", "64") as server:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            async with session.get(f"{server.url}/api/download?site=site&model=cached") as response:
                assert response.status == 200
                assert len(await response.read()) > 24_000_000
            async with asyncio.timeout(30):  # its cache copy is committed just after the last byte
                while True:
                    async with session.get(f"{server.url}/api/cache_stats") as response:
                        if (await response.json())["download_cache"]["entries"] == 1:
                            break
                    await asyncio.sleep(0.05)
            rss_before = rss_kib(server.pid)
            readers: list[socket.socket] = []
            try:
                for index in range(100):
                    model = "cached" if index % 2 else "streamed"
                    readers.append(_stalled_reader(server.port, f"/api/download?site=site&model={model}"))
                heads = [sock.recv(1024) for sock in readers]  # every one of them was answered
                assert [h for h in heads if not h.startswith(b"HTTP/1.1 200 ")] == []
                assert sum(b"X-Cache: HIT" in head for head in heads) >= 50
                for index in range(40):
                    async with session.get(f"{server.url}/api/model?site=site&model=small-{index % 20}") as response:
                        assert response.status == 200
                        assert len((await response.json())["images"]) == 2
                    async with session.get(f"{server.url}/healthz") as response:
                        assert response.status == 200
                growth_mib = (rss_kib(server.pid) - rss_before) / 1024
                assert growth_mib < 128, f"server memory grew {growth_mib:.0f} MiB with 100 stalled downloads"
            finally:
                for sock in readers:
                    sock.close()
            # the stalled streams ended when their clients left: a full download works again
            async with session.get(f"{server.url}/api/download?site=site&model=streamed") as response:
                assert response.status == 200
                with zipfile.ZipFile(io.BytesIO(await response.read())) as archive:
                    assert archive.testzip() is None
                    assert len(archive.namelist()) == 4
