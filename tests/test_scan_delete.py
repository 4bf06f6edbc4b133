"""Safe clean-up of duplicates: byte-for-byte re-check, refusals, the trash, updated results."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from server import keys

from .conftest import ClientFactory
from .scan_support import scan_results


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


async def _scanned(tmp_path: Path, make_client: ClientFactory) -> tuple[Path, TestClient[Any, Any], dict[str, Any]]:
    root = tmp_path / "lib"
    big = os.urandom(300_000)
    small = os.urandom(20_000)
    for folder in ("a", "b", "c"):
        _write(root / "site" / folder / "big.jpg", big)
    _write(root / "site" / "a" / "small.png", small)
    _write(root / "site" / "b" / "small.png", small)
    client = await make_client(models_dir=root)
    body = await scan_results(client)
    assert [g["files"] for g in body["groups"]] == [
        ["site/a/big.jpg", "site/b/big.jpg", "site/c/big.jpg"],
        ["site/a/small.png", "site/b/small.png"],
    ]
    return root, client, body


async def _delete(client: TestClient[Any, Any], keep: str, delete: list[str]) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/duplicates/delete", json={"keep": keep, "delete": delete})
    return response.status, await response.json()


async def test_delete_moves_copies_to_the_trash_and_restore_brings_them_back(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    root, client, body = await _scanned(tmp_path, make_client)
    original = (root / "site/b/big.jpg").read_bytes()
    cache = client.app[keys.SCAN].cache
    assert cache.lookup("site/b/big.jpg", *_identity(root / "site/b/big.jpg")) is not None
    async with client.ws_connect("/ws") as ws:
        assert (await ws.receive_json())["type"] == "hello"
        status, result = await _delete(client, "site/a/big.jpg", ["site/b/big.jpg", "site/c/big.jpg"])
        assert status == 200, result
        changed = [await ws.receive_json(timeout=10), await ws.receive_json(timeout=10)]
    assert result["deleted"] == ["site/b/big.jpg", "site/c/big.jpg"]
    assert result["freed"] == 2 * 300_000
    assert sorted((e["type"], e["site"], e["model"]) for e in changed) == [
        ("library.changed", "site", "b"),
        ("library.changed", "site", "c"),
    ]
    assert not (root / "site/b/big.jpg").exists() and (root / "site/a/big.jpg").exists()
    assert "site/b/big.jpg" not in {path for path in cache._entries}

    after = await (await client.get("/api/duplicates")).json()
    assert [g["files"] for g in after["groups"]] == [["site/a/small.png", "site/b/small.png"]]
    assert after["total_wasted"] == 20_000
    assert after["scan_id"] == body["scan_id"]

    listing = await (await client.get("/api/model", params={"site": "site", "model": "b"})).json()
    assert [m["path"] for m in listing["images"]] == ["small.png"]

    trash = await (await client.get("/api/trash")).json()
    item = next(i for i in trash["items"] if i["model"] == "b")
    restored = await client.post("/api/trash/restore", params={"id": item["id"]})
    assert restored.status == 200
    assert (root / "site/b/big.jpg").read_bytes() == original


async def test_delete_refuses_when_keep_changed_after_the_scan(tmp_path: Path, make_client: ClientFactory) -> None:
    root, client, body = await _scanned(tmp_path, make_client)
    data = bytearray((root / "site/a/big.jpg").read_bytes())
    data[150_000] ^= 1  # same size, one byte in the middle
    (root / "site/a/big.jpg").write_bytes(bytes(data))
    status, result = await _delete(client, "site/a/big.jpg", ["site/b/big.jpg", "site/c/big.jpg"])
    assert status == 409 and result["error"] == "not_identical"
    assert (root / "site/b/big.jpg").exists() and (root / "site/c/big.jpg").exists()
    assert (await (await client.get("/api/trash")).json())["items"] == []
    assert await (await client.get("/api/duplicates")).json() == body


async def test_delete_refuses_one_changed_copy_and_moves_nothing(tmp_path: Path, make_client: ClientFactory) -> None:
    root, client, _body = await _scanned(tmp_path, make_client)
    data = bytearray((root / "site/c/big.jpg").read_bytes())
    data[-1] ^= 1
    (root / "site/c/big.jpg").write_bytes(bytes(data))
    status, result = await _delete(client, "site/a/big.jpg", ["site/b/big.jpg", "site/c/big.jpg"])
    assert status == 409 and "site/c/big.jpg" in result["message"]
    assert (root / "site/b/big.jpg").exists()


async def test_delete_refuses_to_remove_every_copy(tmp_path: Path, make_client: ClientFactory) -> None:
    root, client, body = await _scanned(tmp_path, make_client)
    status, result = await _delete(client, "site/a/big.jpg", ["site/a/big.jpg", "site/b/big.jpg"])
    assert status == 409 and result["error"] == "keep_in_delete"
    # A link to `keep` is the same file: deleting it would remove the kept copy too.
    os.symlink("../a/big.jpg", root / "site" / "b" / "alias.jpg")
    os.link(root / "site/a/small.png", root / "site" / "c" / "small_link.png")
    status, result = await _delete(client, "site/a/big.jpg", ["site/b/alias.jpg"])
    assert status == 409 and result["error"] == "same_file"
    status, result = await _delete(client, "site/a/small.png", ["site/c/small_link.png"])
    assert status == 409 and result["error"] == "same_file"
    assert (root / "site/a/big.jpg").exists() and (root / "site/a/small.png").exists()
    assert (await (await client.get("/api/trash")).json())["items"] == []
    assert await (await client.get("/api/duplicates")).json() == body


async def test_delete_validates_its_body(tmp_path: Path, make_client: ClientFactory) -> None:
    _root, client, _body = await _scanned(tmp_path, make_client)
    for payload in ({"keep": "site/a/big.jpg"}, {"keep": 3, "delete": []}, {"keep": "x", "delete": "y"},
                    {"keep": "site/a/big.jpg", "delete": []}, {"keep": "a", "delete": ["b"], "extra": 1}):  # fmt: skip
        response = await client.post("/api/duplicates/delete", json=payload)
        assert response.status == 400, payload
    response = await client.post("/api/duplicates/delete", data=b"not json")
    assert response.status == 400
    for path, expected in (("../outside.jpg", 400), ("site/a/missing.jpg", 404), ("site/a/.hidden.jpg", 404)):
        status, result = await _delete(client, "site/a/big.jpg", [path])
        assert status == expected and "message" in result


def _identity(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns, info.st_ino
