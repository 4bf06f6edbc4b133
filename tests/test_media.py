"""/media: exact bytes, validators, ranges, conditional requests, and every traversal vector."""

from __future__ import annotations

import gzip
import os
import socket
import time
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from .helpers import jpeg_bytes, write

Client = TestClient[Any, Any]
URL = "/media/alpha/ana/img1.jpg"


@pytest.fixture
def original(library_root: Path) -> bytes:
    return (library_root / "alpha" / "ana" / "img1.jpg").read_bytes()


async def test_full_get_has_the_exact_bytes_and_headers(client: Client, original: bytes) -> None:
    response = await client.get(URL, headers={"Accept-Encoding": "gzip, br"})
    assert response.status == 200
    assert await response.read() == original
    headers = response.headers
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Length"] == str(len(original))
    assert headers["Cache-Control"] == "public, max-age=86400"
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"].startswith('"') and "Content-Encoding" not in headers
    assert parsedate_to_datetime(headers["Last-Modified"]).timestamp() == 1_700_000_000


async def test_a_precompressed_sibling_is_never_served(client: Client, library_root: Path, original: bytes) -> None:
    write(library_root / "alpha" / "ana" / "img1.jpg.gz", gzip.compress(b"not the photo"))
    write(library_root / "alpha" / "ana" / "img1.jpg.br", b"not the photo either")
    response = await client.get(URL, headers={"Accept-Encoding": "gzip, br"})
    assert await response.read() == original
    assert "Content-Encoding" not in response.headers
    assert (await client.get(URL + ".gz")).status == 404


async def test_head_sends_headers_only(client: Client, original: bytes) -> None:
    response = await client.head(URL)
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(original))
    assert await response.read() == b""


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [("bytes=0-9", 0, 9), ("bytes=10-", 10, None), ("bytes=-5", -5, None), ("bytes=5-999999", 5, None)],
)
async def test_single_ranges(client: Client, original: bytes, range_header: str, start: int, end: int | None) -> None:
    response = await client.get(URL, headers={"Range": range_header})
    assert response.status == 206
    expected = original[start : None if end is None else end + 1] if start >= 0 else original[start:]
    assert await response.read() == expected
    first = len(original) + start if start < 0 else start
    assert response.headers["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(original)}"
    assert response.headers["Content-Length"] == str(len(expected))


async def test_unsatisfiable_range_is_416_with_the_length(client: Client, original: bytes) -> None:
    response = await client.get(URL, headers={"Range": f"bytes={len(original)}-"})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(original)}"
    assert "Cache-Control" not in response.headers


@pytest.mark.parametrize("header", ["bytes=0-1,4-5", "items=0-3", "bytes=9-2", "bytes=abc"])
async def test_ranges_we_do_not_honour_get_the_whole_file(client: Client, original: bytes, header: str) -> None:
    response = await client.get(URL, headers={"Range": header})
    assert response.status == 200
    assert await response.read() == original


async def test_conditional_get(client: Client) -> None:
    first = await client.get(URL)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert (await client.get(URL, headers={"If-None-Match": etag})).status == 304
    assert (await client.get(URL, headers={"If-None-Match": f"W/{etag}"})).status == 304
    assert (await client.get(URL, headers={"If-None-Match": "*"})).status == 304
    assert (await client.get(URL, headers={"If-Modified-Since": modified})).status == 304
    not_modified = await client.get(URL, headers={"If-None-Match": etag})
    assert not_modified.headers["ETag"] == etag and not_modified.headers["Cache-Control"]
    # If-None-Match wins over If-Modified-Since when both are sent
    assert (await client.get(URL, headers={"If-None-Match": '"other"', "If-Modified-Since": modified})).status == 200
    earlier = formatdate(1_600_000_000, usegmt=True)
    assert (await client.get(URL, headers={"If-Modified-Since": earlier})).status == 200
    assert (await client.get(URL, headers={"If-Modified-Since": "garbage"})).status == 200
    assert (await client.get(URL, headers={"If-Match": '"other"'})).status == 412
    assert (await client.get(URL, headers={"If-Match": etag})).status == 200
    assert (await client.get(URL, headers={"If-Unmodified-Since": earlier})).status == 412


async def test_if_range_decides_between_part_and_whole(client: Client, original: bytes) -> None:
    first = await client.get(URL)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    same = await client.get(URL, headers={"Range": "bytes=0-3", "If-Range": etag})
    assert same.status == 206 and await same.read() == original[:4]
    changed = await client.get(URL, headers={"Range": "bytes=0-3", "If-Range": '"old-version"'})
    assert changed.status == 200 and await changed.read() == original
    weak = await client.get(URL, headers={"Range": "bytes=0-3", "If-Range": f"W/{etag}"})
    assert weak.status == 200
    by_date = await client.get(URL, headers={"Range": "bytes=0-3", "If-Range": modified})
    assert by_date.status == 206
    old_date = await client.get(URL, headers={"Range": "bytes=0-3", "If-Range": formatdate(1, usegmt=True)})
    assert old_date.status == 200


async def test_validator_changes_when_the_file_changes(client: Client, library_root: Path) -> None:
    before = (await client.get(URL)).headers["ETag"]
    write(library_root / "alpha" / "ana" / "img1.jpg", jpeg_bytes(77), mtime=1_700_000_500)
    after = await client.get(URL, headers={"If-None-Match": before})
    assert after.status == 200 and after.headers["ETag"] != before


async def test_last_modified_is_never_in_the_future(client: Client, library_root: Path) -> None:
    future = time.time() + 10 * 365 * 86400
    write(library_root / "alpha" / "ana" / "future.jpg", jpeg_bytes(3), mtime=future)
    response = await client.get("/media/alpha/ana/future.jpg")
    assert response.status == 200
    assert parsedate_to_datetime(response.headers["Last-Modified"]).timestamp() <= time.time() + 1


async def test_nested_model_and_non_ascii_names(client: Client, library_root: Path) -> None:
    write(library_root / "beta" / "patreon" / "joão" / "ñ 1 #.jpg", b"\xff\xd8 bytes")
    response = await client.get("/media/beta/patreon/jo%C3%A3o/%C3%B1%201%20%23.jpg")
    assert response.status == 200 and await response.read() == b"\xff\xd8 bytes"


@pytest.mark.parametrize(
    "path",
    [
        "/media/alpha/ana/..%2f..%2f..%2fetc%2fpasswd",
        "/media/alpha/ana/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/media/alpha/%2e%2e/beta/patreon/jo%C3%A3o/p1.jpg",
        "/media/alpha/ana/%252e%252e/%252e%252e/etc/passwd",
        "/media/alpha/ana/..%5c..%5cetc%5cpasswd",
        "/media/alpha/ana/img1.jpg%00.png",
        "/media//etc/passwd",
        "/media/%2fetc%2fpasswd",
        "/media/alpha/ana/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        "/media/alpha/ana/%ef%bc%8e%ef%bc%8e/x.jpg",
        "/media/alpha/ana/.hidden.jpg",
        "/media/alpha/ana/info.json",
        "/media/alpha/ana/img4.jpg.part",
        "/media/alpha/ana",
        "/media/alpha/.trash/x/data",
    ],
)
async def test_traversal_and_non_media_are_refused(client: Client, path: str) -> None:
    # encoded=True: the client sends the path as written, without normalising dot segments
    response = await client.session.get(client.make_url("").with_path(path, encoded=True))
    assert response.status in (400, 404)
    body = await response.json()
    assert body["error"] and body["message"]
    assert "root:" not in await response.text()


async def test_symlinks_out_of_the_root_are_not_served(client: Client, library_root: Path, tmp_path: Path) -> None:
    secret = write(tmp_path / "outside" / "secret.jpg", b"secret")
    os.symlink(secret, library_root / "alpha" / "ana" / "link.jpg")
    os.symlink(tmp_path / "outside", library_root / "alpha" / "escape")
    assert (await client.get("/media/alpha/ana/link.jpg")).status == 404
    assert (await client.get("/media/alpha/escape/secret.jpg")).status == 404
    os.symlink(library_root / "alpha" / "ana" / "img1.jpg", library_root / "alpha" / "ana" / "inside.jpg")
    assert (await client.get("/media/alpha/ana/inside.jpg")).status == 200


async def test_a_file_swapped_for_a_symlink_after_the_check_is_not_followed(tmp_path: Path) -> None:
    from server.errors import NotFound
    from server.infra.pools import open_regular

    secret = write(tmp_path / "secret.jpg", b"secret")
    victim = tmp_path / "photo.jpg"
    os.symlink(secret, victim)  # the swap happened between resolve() and open()
    with pytest.raises(NotFound):
        open_regular(str(victim))


async def test_a_file_opened_for_a_cancelled_request_is_closed() -> None:
    import asyncio
    import threading

    from server.infra.pools import open_off_loop

    release, closed = threading.Event(), threading.Event()

    class Handle:
        def close(self) -> None:
            closed.set()

    def slow_open() -> tuple[Handle, int]:
        release.wait(10)
        return Handle(), 0

    task = asyncio.create_task(open_off_loop(slow_open))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    assert await asyncio.to_thread(closed.wait, 10), "the late-opened file was never closed"


@pytest.mark.skipif(not hasattr(socket, "TCP_CORK"), reason="TCP_CORK is Linux's")
def test_a_small_region_goes_out_corked_and_the_cork_is_lifted_after() -> None:
    """sendfile regions up to CORKED_BYTES are sent with TCP_CORK (full segments, as nginx's
    tcp_nopush); the cork comes off when the region is out, so the tail is not held back; a
    bigger region (faster uncorked) and a non-TCP socket are left alone."""
    from server.web.files import CORKED_BYTES, corked

    class Transport:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def get_extra_info(self, name: str) -> socket.socket:
            return self.sock

    def cork(sock: socket.socket) -> int:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK)

    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname()):
        server, _ = listener.accept()
        with server:
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as aiohttp sets it
            with corked(Transport(server), CORKED_BYTES):  # type: ignore[arg-type]
                assert cork(server) == 1
            assert cork(server) == 0
            with corked(Transport(server), CORKED_BYTES + 1):  # type: ignore[arg-type]
                assert cork(server) == 0
            with pytest.raises(ConnectionResetError), corked(Transport(server), 1):  # type: ignore[arg-type]
                raise ConnectionResetError  # a send that fails still lifts the cork
            assert cork(server) == 0
    left, right = socket.socketpair()
    with left, right, corked(Transport(left), 1):  # type: ignore[arg-type]
        pass
