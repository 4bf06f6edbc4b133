"""Routes that touch the disk under attack: symlinks out of the root and traversal on deletes,
downloads and thumbnails; a cross-origin WebSocket handshake; hostile JSON bodies.

Whatever the answer, the files outside the library are never read, served or moved.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.config import MAX_BODY_BYTES

from .conftest import ClientFactory
from .helpers import jpeg_bytes, write

SECRET = jpeg_bytes(4242)


@pytest.fixture
def outside(tmp_path: Path, library_root: Path) -> Path:
    """A folder outside the root with a secret image, linked into the library three ways."""
    folder = tmp_path / "outside"
    write(folder / "secret.jpg", SECRET)
    (library_root / "alpha" / "ana" / "link.jpg").symlink_to(folder / "secret.jpg")
    (library_root / "alpha" / "evil").symlink_to(folder)  # a model that is a symlink out
    (library_root / "alpha" / "bruno" / "sub").symlink_to(folder)  # a nested folder link
    return folder


def _intact(outside: Path, library_root: Path) -> None:
    assert (outside / "secret.jpg").read_bytes() == SECRET
    assert (library_root / "alpha" / "ana" / "link.jpg").is_symlink()
    assert (library_root / "alpha" / "evil").is_symlink()
    assert not list(library_root.glob("*/.trash/*"))  # nothing was moved to the trash


async def _refused(response: aiohttp.ClientResponse, *allowed: int) -> dict[str, Any]:
    assert response.status in (allowed or (400, 403, 404)), await response.text()
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    assert set(body) >= {"error", "message"}
    return body


DELETES = [
    "/api/file?site=alpha&model=ana&path=link.jpg",
    "/api/file?site=alpha&model=evil&path=secret.jpg",
    "/api/file?site=alpha&model=bruno&path=sub/secret.jpg",
    "/api/file?site=alpha&model=ana&path=../../../outside/secret.jpg",
    "/api/file?site=alpha&model=..&path=outside/secret.jpg",
    "/api/model?site=alpha&model=evil",
    "/api/model?site=alpha&model=bruno/sub",
    "/api/model?site=alpha&model=..",
    "/api/model?site=alpha&model=../beta",
    "/api/model?site=..&model=outside",
    "/api/model?site=alpha&model=%2e%2e%2fbeta",
]


@pytest.mark.parametrize("url", DELETES)
async def test_deletes_never_follow_symlinks_or_traversal(
    make_client: ClientFactory, library_root: Path, outside: Path, url: str
) -> None:
    client = await make_client()
    await _refused(await client.delete(url))
    _intact(outside, library_root)


@pytest.mark.parametrize(
    "path",
    ["alpha/ana/link.jpg", "alpha/evil/secret.jpg", "alpha/bruno/sub/secret.jpg", "../outside/secret.jpg"],
)
async def test_duplicate_deletes_never_follow_symlinks_or_traversal(
    make_client: ClientFactory, library_root: Path, outside: Path, path: str
) -> None:
    client = await make_client()
    for body in ({"keep": "alpha/ana/img1.jpg", "delete": [path]}, {"keep": path, "delete": ["alpha/ana/img1.jpg"]}):
        await _refused(await client.post("/api/duplicates/delete", json=body), 400, 403, 404, 409)
    _intact(outside, library_root)
    assert (library_root / "alpha" / "ana" / "img1.jpg").is_file()


@pytest.mark.parametrize(
    "query",
    ["model=../beta", "model=..", "model=evil", "model=bruno/sub", "model=%2e%2e", "model=ana/../../beta"],
)
async def test_downloads_never_leave_the_root(
    make_client: ClientFactory, library_root: Path, outside: Path, query: str
) -> None:
    client = await make_client()
    await _refused(await client.get(f"/api/download?site=alpha&{query}"))


async def test_a_download_of_a_model_skips_a_symlinked_file(
    make_client: ClientFactory, library_root: Path, outside: Path
) -> None:
    client = await make_client()
    for fmt in ("zip", "pdf"):
        response = await client.get(f"/api/download?site=alpha&model=ana&format={fmt}")
        assert response.status == 200
        data = await response.read()
        assert SECRET not in data
        if fmt == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                assert archive.testzip() is None
                assert not [n for n in archive.namelist() if "link" in n or "secret" in n]
    response = await client.get("/api/download?site=alpha&model=bruno")
    assert response.status == 200
    assert SECRET not in await response.read()


@pytest.mark.parametrize(
    "path",
    [
        "alpha/ana/link.jpg",
        "alpha/evil/secret.jpg",
        "alpha/bruno/sub/secret.jpg",
        "alpha/%2e%2e/%2e%2e/outside/secret.jpg",
    ],
)
async def test_thumbnails_never_follow_symlinks_out(
    make_client: ClientFactory, library_root: Path, outside: Path, path: str
) -> None:
    client = await make_client()
    response = await client.get(f"/thumb/{path}?w=64")
    await _refused(response)
    _intact(outside, library_root)


async def test_a_cross_origin_websocket_handshake_is_refused(make_client: ClientFactory) -> None:
    client = await make_client()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", headers={"Origin": "http://evil.example"})
    assert refused.value.status == 403
    async with client.ws_connect("/ws", headers={"Origin": str(client.make_url("/")).rstrip("/")}) as ws:
        assert (await ws.receive_json(timeout=10))["type"] == "hello"


@pytest.mark.parametrize(
    "body",
    [
        b'{"keep": "alpha/ana/img1.jpg", "delete": ["alpha/ana/img2.jpg"], "keep": "alpha/ana/img1.jpg"}',
        b'{"keep": "alpha/ana/img1.jpg", "delete": ["alpha/ana/img2.jpg"], "delete": ["alpha/ana/img2.jpg"]}',
        b'{"keep": "a"}{"keep": "b"}',
        b"[" * 100_000,
        b'{"keep": "alpha/ana/img1.jpg", "delete": [' + b'"x",' * 600 + b'"x"]}',
        b"\xff\xfe{}",
    ],
)
async def test_hostile_json_bodies_are_clean_400s(make_client: ClientFactory, library_root: Path, body: bytes) -> None:
    client = await make_client()
    response = await client.post("/api/duplicates/delete", data=body, headers={"Content-Type": "application/json"})
    await _refused(response, 400)
    assert (library_root / "alpha" / "ana" / "img2.jpg").is_file()


async def test_an_oversized_body_is_a_413(make_client: ClientFactory) -> None:
    client = await make_client()
    body = b'{"keep": "a", "delete": [' + b'"x",' * (MAX_BODY_BYTES // 4) + b'"x"]}'
    response = await client.post(
        "/api/duplicates/delete", data=io.BytesIO(body), headers={"Content-Type": "application/json"}
    )
    await _refused(response, 413)
