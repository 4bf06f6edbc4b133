"""Deletes go to a restorable trash; every delete and restore refreshes the listings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.library import Library
from server.trash import Trash

from .conftest import ClientFactory
from .helpers import age_folders, jpeg_bytes, write

Client = TestClient[Any, Any]


@pytest.fixture
async def aged_client(make_client: ClientFactory, library_root: Path) -> Client:
    age_folders(library_root)
    return await make_client()


async def _images(client: Client, site: str, model: str) -> list[str]:
    body = await (await client.get(f"/api/model?site={site}&model={model}")).json()
    return [m["path"] for m in body["images"]]


async def test_file_round_trip_through_the_trash(aged_client: Client, library_root: Path) -> None:
    original = (library_root / "alpha" / "ana" / "img2.jpg").read_bytes()
    assert "img2.jpg" in await _images(aged_client, "alpha", "ana")
    deleted = await aged_client.delete("/api/file?site=alpha&model=ana&path=img2.jpg")
    assert deleted.status == 200
    body = await deleted.json()
    assert body["status"] == "deleted" and body["trash_id"]
    assert not (library_root / "alpha" / "ana" / "img2.jpg").exists()
    assert "img2.jpg" not in await _images(aged_client, "alpha", "ana")
    models = await (await aged_client.get("/api/models?site=alpha")).json()
    assert models["models"][0]["images"] == 3  # the site listing was invalidated at once

    trash = await (await aged_client.get("/api/trash")).json()
    [item] = trash["items"]
    assert {k: item[k] for k in ("id", "kind", "site", "model", "path", "size")} == {
        "id": body["trash_id"],
        "kind": "file",
        "site": "alpha",
        "model": "ana",
        "path": "img2.jpg",
        "size": len(original),
    }
    assert item["deleted_at"] > 0

    restored = await aged_client.post(f"/api/trash/restore?id={body['trash_id']}")
    assert restored.status == 200
    assert (await restored.json()) == {"status": "restored", "id": body["trash_id"], "item": item}
    assert (library_root / "alpha" / "ana" / "img2.jpg").read_bytes() == original
    assert "img2.jpg" in await _images(aged_client, "alpha", "ana")
    assert (await (await aged_client.get("/api/trash")).json())["items"] == []


async def test_model_round_trip_and_empty(aged_client: Client, library_root: Path) -> None:
    response = await aged_client.delete("/api/model?site=beta&model=patreon/jo%C3%A3o")
    assert response.status == 200
    trash_id = (await response.json())["trash_id"]
    assert not (library_root / "beta" / "patreon" / "joão").exists()
    models = await (await aged_client.get("/api/models?site=beta")).json()
    assert models["total"] == 0
    sites = await (await aged_client.get("/api/sites")).json()
    assert sites["sites"][1]["files"] == 0
    assert (await aged_client.get("/api/model?site=beta&model=patreon/jo%C3%A3o")).status == 404

    assert (await aged_client.post(f"/api/trash/restore?id={trash_id}")).status == 200
    assert (library_root / "beta" / "patreon" / "joão" / "p1.jpg").exists()
    assert (await (await aged_client.get("/api/models?site=beta")).json())["total"] == 1

    second = await (await aged_client.delete("/api/file?site=alpha&model=bruno&path=a.jpg")).json()
    size = (await (await aged_client.get("/api/trash")).json())["items"][0]["size"]
    emptied = await aged_client.delete("/api/trash")
    assert (await emptied.json()) == {"status": "emptied", "freed": size}
    assert (await aged_client.post(f"/api/trash/restore?id={second['trash_id']}")).status == 404
    assert not any((library_root / "alpha" / ".trash").iterdir())


async def test_restore_refuses_when_the_place_is_taken(aged_client: Client, library_root: Path) -> None:
    trash_id = (await (await aged_client.delete("/api/file?site=alpha&model=ana&path=img1.jpg")).json())["trash_id"]
    write(library_root / "alpha" / "ana" / "img1.jpg", jpeg_bytes(50))
    response = await aged_client.post(f"/api/trash/restore?id={trash_id}")
    assert response.status == 409
    assert (await response.json())["error"] == "restore_conflict"
    assert (library_root / "alpha" / "ana" / "img1.jpg").read_bytes() == jpeg_bytes(50)  # nothing overwritten
    assert len((await (await aged_client.get("/api/trash")).json())["items"]) == 1


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("DELETE", "/api/file?site=alpha&model=ana&path=nope.jpg", 404),
        ("DELETE", "/api/file?site=alpha&model=ana&path=info.json", 404),
        ("DELETE", "/api/file?site=alpha&model=ana&path=../bruno/a.jpg", 400),
        ("DELETE", "/api/file?site=alpha&model=ana", 400),
        ("DELETE", "/api/model?site=alpha&model=..", 400),
        ("DELETE", "/api/model?site=alpha&model=nope", 404),
        ("DELETE", "/api/model?site=alpha", 400),
        ("POST", "/api/trash/restore?id=not-an-id", 400),
        ("POST", "/api/trash/restore?id=0123456789ab-89abcdef", 404),
        ("POST", "/api/trash/restore", 400),
    ],
)
async def test_bad_deletes_change_nothing(
    client: Client, library_root: Path, method: str, url: str, status: int
) -> None:
    before = sorted(str(p) for p in library_root.rglob("*"))
    response = await client.request(method, url)
    assert response.status == status
    assert (await response.json())["message"]
    assert sorted(str(p) for p in library_root.rglob("*")) == before


async def test_cross_origin_writes_are_refused(client: Client, library_root: Path) -> None:
    url = "/api/file?site=alpha&model=ana&path=img1.jpg"
    refused = await client.delete(url, headers={"Origin": "http://evil.example"})
    assert refused.status == 403 and (await refused.json())["error"] == "cross_origin"
    assert (library_root / "alpha" / "ana" / "img1.jpg").exists()
    own = f"http://{client.host}:{client.port}"
    assert (await client.delete(url, headers={"Origin": own})).status == 200
    assert (await client.get("/api/trash", headers={"Origin": "http://evil.example"})).status == 200


def test_recover_removes_items_of_an_interrupted_move(library_root: Path) -> None:
    library = Library(library_root)
    trash = Trash(library)
    kept = trash.delete_file("alpha", "ana", "img1.jpg")
    interrupted = library_root / "alpha" / ".trash" / "0123456789ab-89abcdef"
    interrupted.mkdir()
    (interrupted / "meta.json").write_text("{}")  # crashed before the rename: original untouched
    assert [i.id for i in trash.items()] == [kept.id]
    assert trash.recover() == 1
    assert not interrupted.exists()
    assert [i.id for i in trash.items()] == [kept.id]


def test_trash_is_invisible_to_listings(library_root: Path) -> None:
    library = Library(library_root)
    Trash(library).delete_model("alpha", "bruno")
    names = [m.name for m in library.walk_site("alpha").models]
    assert names == ["ana", "Carla"]
    assert ".trash" not in library.site_names()
    assert os.path.isdir(library_root / "alpha" / ".trash")


def test_deleting_a_link_moves_the_link_not_its_target(library_root: Path) -> None:
    folder = library_root / "alpha" / "ana"
    os.symlink(folder / "img1.jpg", folder / "alias.jpg")
    os.symlink(library_root / "alpha" / "bruno", library_root / "alpha" / "bruno-link")
    library = Library(library_root)
    trash = Trash(library)
    item = trash.delete_file("alpha", "ana", "alias.jpg")
    assert (folder / "img1.jpg").is_file() and not os.path.lexists(folder / "alias.jpg")
    trash.delete_model("alpha", "bruno-link")
    assert (library_root / "alpha" / "bruno" / "a.jpg").is_file()
    assert not os.path.lexists(library_root / "alpha" / "bruno-link")
    trash.restore(item.id)
    assert os.path.islink(folder / "alias.jpg")


async def test_trash_answers_503_while_the_library_is_missing(client: Client, library_root: Path) -> None:
    trash_id = (await (await client.delete("/api/file?site=alpha&model=ana&path=img1.jpg")).json())["trash_id"]
    unmounted = library_root.rename(library_root.with_name("unmounted"))
    await client.app[keys.WATCHER].sweep()  # the catalog's routes go by the watcher's last sweep
    try:
        for method, url in (
            ("GET", "/api/trash"),
            ("POST", f"/api/trash/restore?id={trash_id}"),
            ("DELETE", "/api/trash"),
            ("DELETE", "/api/file?site=alpha&model=ana&path=img2.jpg"),
            ("DELETE", "/api/model?site=alpha&model=ana"),
            ("GET", "/api/sites"),  # the same answer as the catalog's
        ):
            response = await client.request(method, url)
            assert response.status == 503, url
            assert (await response.json())["error"] == "library_unavailable", url
    finally:
        unmounted.rename(library_root)
    [item] = (await (await client.get("/api/trash")).json())["items"]  # the drive is back, the item kept
    assert item["id"] == trash_id


async def test_the_app_starts_while_the_library_is_missing(make_client: ClientFactory, library_root: Path) -> None:
    interrupted = library_root / "alpha" / ".trash" / "0123456789ab-89abcdef"
    interrupted.mkdir(parents=True)
    unmounted = library_root.rename(library_root.with_name("unmounted"))
    client = await make_client()  # trash recovery at start finds nothing to do
    response = await client.get("/api/trash")
    assert response.status == 503 and (await response.json())["error"] == "library_unavailable"
    assert (unmounted / "alpha" / ".trash" / interrupted.name).is_dir()  # nothing touched
