"""The trash at scale: thumbnails by trash id, restore and delete-for-good of many ids at once."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from PIL import Image

from server import keys
from server.infra.events import LibraryChanged

from .conftest import ClientFactory
from .helpers import write

Client = TestClient[Any, Any]
UNKNOWN_ID = "0123456789ab-89abcdef"


async def _delete_file(client: Client, model: str, name: str, site: str = "alpha") -> str:
    response = await client.delete(f"/api/file?site={site}&model={model}&path={name}")
    assert response.status == 200
    trash_id: str = (await response.json())["trash_id"]
    return trash_id


async def _delete_model(client: Client, site: str, model: str) -> str:
    response = await client.delete(f"/api/model?site={site}&model={model}")
    assert response.status == 200
    trash_id: str = (await response.json())["trash_id"]
    return trash_id


def _changes(client: Client) -> list[tuple[str, str | None]]:
    seen: list[tuple[str, str | None]] = []
    client.app[keys.EVENTS].subscribe(lambda e: seen.append((e.site, e.model)), LibraryChanged)
    return seen


# -- thumbnails ------------------------------------------------------------------------------


async def test_a_trashed_file_has_a_thumbnail_with_the_media_caching(make_client: ClientFactory) -> None:
    client = await make_client()
    trash_id = await _delete_file(client, "ana", "img1.jpg")
    response = await client.get(f"/api/trash/thumb?id={trash_id}&w=64")
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    media = await client.get("/media/alpha/ana/img2.jpg")
    assert response.headers["Cache-Control"] == media.headers["Cache-Control"]
    image = Image.open(io.BytesIO(await response.read()))
    assert max(image.size) == 64
    etag = response.headers["ETag"]
    again = await client.get(f"/api/trash/thumb?id={trash_id}&w=64", headers={"If-None-Match": etag})
    assert again.status == 304


async def test_a_trashed_model_shows_its_first_image_in_natural_order(
    make_client: ClientFactory, library_root: Path
) -> None:
    folder = library_root / "alpha" / "dora"
    write(folder / "notes.txt", b"not an image")
    write(folder / "img10.jpg", _jpeg((255, 0, 0), (80, 40)))
    write(folder / "img2.jpg", _jpeg((0, 0, 255), (80, 40)))
    client = await make_client()
    trash_id = await _delete_model(client, "alpha", "dora")
    response = await client.get(f"/api/trash/thumb?id={trash_id}&w=64")
    assert response.status == 200
    image = Image.open(io.BytesIO(await response.read())).convert("RGB")
    red, _green, blue = image.getpixel((32, 16))  # type: ignore[misc]
    assert blue > 200 and red < 60  # img2 (blue) comes before img10 (red)


async def test_a_model_without_images_and_unknown_or_bad_ids_have_no_thumbnail(
    make_client: ClientFactory, library_root: Path
) -> None:
    write(library_root / "alpha" / "empty" / "notes.txt", b"text only")
    client = await make_client()
    trash_id = await _delete_model(client, "alpha", "empty")
    response = await client.get(f"/api/trash/thumb?id={trash_id}")
    assert response.status == 404
    assert set(await response.json()) == {"error", "message"}
    assert (await client.get(f"/api/trash/thumb?id={UNKNOWN_ID}")).status == 404
    for bad in ("../../etc", "0123456789ab-89abcdeg", ""):
        response = await client.get(f"/api/trash/thumb?id={bad}")
        assert response.status == 400, bad
        assert set(await response.json()) == {"error", "message"}
    assert (await client.get(f"/api/trash/thumb?id={trash_id}&w=5000")).status == 400


async def test_a_trashed_link_to_outside_the_trash_shows_nothing(
    make_client: ClientFactory, library_root: Path, tmp_path: Path
) -> None:
    outside = write(tmp_path / "secret.jpg", _jpeg((0, 255, 0), (40, 40)))
    client = await make_client()
    # the library refuses to move a link whose target is outside it, so plant one in an item
    item = client.app[keys.TRASH].delete_file("alpha", "ana", "img1.jpg")
    data = library_root / "alpha" / ".trash" / item.id / "data"
    data.unlink()
    os.symlink(outside, data)
    response = await client.get(f"/api/trash/thumb?id={item.id}")
    assert response.status == 404


# -- restore many ------------------------------------------------------------------------------


async def test_restore_of_several_ids_answers_per_item(make_client: ClientFactory, library_root: Path) -> None:
    client = await make_client()
    first = await _delete_file(client, "ana", "img1.jpg")
    second = await _delete_file(client, "ana", "img2.jpg")
    model = await _delete_model(client, "alpha", "bruno")
    blocked = await _delete_file(client, "Carla", "only.jpg")
    write(library_root / "alpha" / "Carla" / "only.jpg", b"a new file took its place")
    seen = _changes(client)

    response = await client.post(f"/api/trash/restore?id={first}&id={second}&id={model}&id={blocked}&id={UNKNOWN_ID}")
    assert response.status == 200
    body = await response.json()
    assert [item["id"] for item in body["restored"]] == [first, second, model]
    assert [c["id"] for c in body["conflicts"]] == [blocked, UNKNOWN_ID]
    assert all(c["message"] for c in body["conflicts"])
    for name in ("ana/img1.jpg", "ana/img2.jpg", "bruno/a.jpg"):
        assert (library_root / "alpha" / name).exists()
    assert seen == [("alpha", "ana"), ("alpha", "bruno")]  # once per model, not once per file
    left = (await (await client.get("/api/trash")).json())["items"]
    assert [item["id"] for item in left] == [blocked]


async def test_restore_of_one_id_keeps_its_answer_and_its_404(make_client: ClientFactory) -> None:
    client = await make_client()
    trash_id = await _delete_file(client, "ana", "img1.jpg")
    body = await (await client.post(f"/api/trash/restore?id={trash_id}")).json()
    assert body["status"] == "restored" and body["id"] == trash_id and body["item"]["path"] == "img1.jpg"
    again = await client.post(f"/api/trash/restore?id={trash_id}")
    assert again.status == 404
    assert set(await again.json()) == {"error", "message"}
    assert (await client.post("/api/trash/restore")).status == 400
    assert (await client.post(f"/api/trash/restore?id={trash_id}&id=nope")).status == 400


# -- delete for good ---------------------------------------------------------------------------


async def test_delete_for_good_removes_only_the_chosen_items(make_client: ClientFactory, library_root: Path) -> None:
    client = await make_client()
    keep = await _delete_file(client, "ana", "img1.jpg")
    file_id = await _delete_file(client, "ana", "img2.jpg")
    model_id = await _delete_model(client, "alpha", "bruno")
    items = {i["id"]: i for i in (await (await client.get("/api/trash")).json())["items"]}
    seen = _changes(client)

    response = await client.post(f"/api/trash/delete?id={file_id}&id={model_id}&id={UNKNOWN_ID}")
    assert response.status == 200
    body = await response.json()
    assert sorted(item["id"] for item in body["deleted"]) == sorted([file_id, model_id])
    assert body["freed"] == items[file_id]["size"] + items[model_id]["size"] > 0
    assert [f["id"] for f in body["failed"]] == [UNKNOWN_ID]
    assert seen == []  # the library's listings did not change
    assert not (library_root / "alpha" / ".trash" / file_id).exists()
    assert not (library_root / "alpha" / ".trash" / model_id).exists()
    left = (await (await client.get("/api/trash")).json())["items"]
    assert [item["id"] for item in left] == [keep]
    assert (await client.post(f"/api/trash/restore?id={file_id}")).status == 404


async def test_delete_for_good_checks_every_id_before_deleting_any(make_client: ClientFactory) -> None:
    client = await make_client()
    trash_id = await _delete_file(client, "ana", "img1.jpg")
    response = await client.post(f"/api/trash/delete?id={trash_id}&id=..%2F..%2Falpha")
    assert response.status == 400
    assert set(await response.json()) == {"error", "message"}
    assert (await client.post("/api/trash/delete")).status == 400
    assert [i["id"] for i in (await (await client.get("/api/trash")).json())["items"]] == [trash_id]


async def test_an_interrupted_delete_leaves_no_half_item(make_client: ClientFactory, library_root: Path) -> None:
    client = await make_client()
    trash_id = await _delete_model(client, "alpha", "bruno")
    item_dir = library_root / "alpha" / ".trash" / trash_id
    os.rename(item_dir / "data", item_dir / "deleting")  # the first step of a delete, then a crash
    assert (await (await client.get("/api/trash")).json())["items"] == []
    assert client.app[keys.TRASH].recover() == 1
    assert not item_dir.exists()


def _jpeg(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()
