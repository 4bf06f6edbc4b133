"""Real archives never break a listing: odd folder names, unreadable folders, files rewritten
in place, a library root that goes away, and names from other systems (NFD, accents)."""

from __future__ import annotations

import io
import os
import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.cache.freshness import ROOT_KEY
from server.errors import Forbidden
from server.library import Library, search_fold
from server.scan import hashing

from .conftest import ClientFactory
from .helpers import age_folders, jpeg_bytes, make_model, write

Client = TestClient[Any, Any]
NO_SWEEPS = 3600.0  # the watcher sweeps once at start; the tests sweep by hand after that


async def _get(client: Client, url: str, status: int = 200) -> Any:
    response = await client.get(url)
    body = await response.json()
    assert response.status == status, body
    return body


# -- 1. folders named like media files --------------------------------------------------------


def _media_named_folders(root: Path) -> Path:
    """Models whose folder names end like media files, beside a plain one."""
    make_model(root, "studio", "studio.mov", ["clip1.jpg", "clip2.jpg"], seed=1)
    make_model(root, "studio", "final.gif", ["frame.jpg"], seed=3)
    make_model(root, "studio", "x.jpg/deep", ["a.jpg", "dup.jpg"], seed=4)
    make_model(root, "studio", "plain", ["p.jpg"], seed=6)
    write(root / "studio" / "plain" / "dup.jpg", jpeg_bytes(5))  # same bytes as x.jpg/deep/dup.jpg
    return root


def test_the_site_walk_enters_folders_named_like_media(tmp_path: Path) -> None:
    root = _media_named_folders(tmp_path / "lib")
    listing = Library(root).walk_site("studio")
    assert {m.name: m.images for m in listing.models} == {"final.gif": 1, "plain": 2, "studio.mov": 2, "x.jpg/deep": 2}
    assert Library(root).site_names() == ["studio"]


def test_the_scan_walk_enters_folders_named_like_media(tmp_path: Path) -> None:
    root = str(_media_named_folders(tmp_path / "lib"))
    folders = hashing.walk_roots(root)
    assert sorted(folders) == ["studio/final.gif", "studio/plain", "studio/studio.mov", "studio/x.jpg"]
    found = sorted(entry[0] for entry in hashing.walk_folders(root, folders))
    assert found == [
        "studio/final.gif/frame.jpg",
        "studio/plain/dup.jpg",
        "studio/plain/p.jpg",
        "studio/studio.mov/clip1.jpg",
        "studio/studio.mov/clip2.jpg",
        "studio/x.jpg/deep/a.jpg",
        "studio/x.jpg/deep/dup.jpg",
    ]


def test_symlinked_folders_named_like_media_are_folders_and_stay_inside(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    make_model(root, "site", "real", ["a.jpg"])
    make_model(tmp_path, "outside", "secret", ["s.jpg"])
    os.symlink(root / "site" / "real", root / "site" / "linked.webm")
    os.symlink(tmp_path / "outside" / "secret", root / "site" / "escape.jpg")
    listing = Library(root).walk_site("site")
    assert [m.name for m in listing.models] == ["real"]  # the link to "real" is the same folder, walked once
    walked = hashing.walk_folders(str(root), hashing.walk_roots(str(root)))
    # the scan reaches the one file by both paths; it is one inode, so never a duplicate of itself
    assert sorted(entry[0] for entry in walked) == ["site/linked.webm/a.jpg", "site/real/a.jpg"]
    assert len({entry[3:5] for entry in walked}) == 1


async def test_media_named_folders_in_every_listing_and_download(tmp_path: Path, make_client: ClientFactory) -> None:
    root = _media_named_folders(tmp_path / "lib")
    client = await make_client(models_dir=root)
    sites = await _get(client, "/api/sites")
    assert sites["sites"][0] | {"bytes": 0} == {"name": "studio", "models": 4, "files": 7, "bytes": 0}
    names = [m["name"] for m in (await _get(client, "/api/models?site=studio"))["models"]]
    assert names == ["final.gif", "plain", "studio.mov", "x.jpg/deep"]
    model = await _get(client, "/api/model?site=studio&model=studio.mov")
    assert [m["path"] for m in model["images"]] == ["clip1.jpg", "clip2.jpg"]
    response = await client.get("/api/download?site=studio&format=zip")
    assert response.status == 200
    archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    assert "studio.mov/clip1.jpg" in archive.namelist()
    assert "x.jpg/deep/dup.jpg" in archive.namelist()


# -- 2. an unreadable model folder ------------------------------------------------------------


@pytest.fixture
def unreadable(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Folders that cannot be opened for reading (`os.open`, `os.scandir`), as a chmod 000
    folder of another user cannot.

    Tests run as root, which reads a chmod 000 folder anyway, so the folder is also made
    unreadable by patching `os.open` and `os.scandir` for these paths only (every other path
    is untouched).
    """
    folders: list[Path] = []
    real_scandir, real_open = os.scandir, os.open

    def refused(path: Any) -> bool:
        return isinstance(path, (str, os.PathLike)) and any(os.fspath(path) == str(f) for f in folders)

    def scandir(path: Any = ".") -> Any:
        if refused(path):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    def open_(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if dir_fd is None and refused(path):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "open", open_)
    yield folders
    for folder in folders:
        folder.chmod(0o755)


def test_reading_an_unreadable_model_is_forbidden(library_root: Path, unreadable: list[Path]) -> None:
    folder = library_root / "alpha" / "bruno"
    folder.chmod(0)
    unreadable.append(folder)
    with pytest.raises(Forbidden) as raised:
        Library(library_root).read_model("alpha", "bruno")
    assert raised.value.code == "model_unreadable"


async def test_an_unreadable_model_answers_403_naming_it(
    client: Client, library_root: Path, unreadable: list[Path]
) -> None:
    folder = library_root / "alpha" / "bruno"
    folder.chmod(0)
    unreadable.append(folder)
    body = await _get(client, "/api/model?site=alpha&model=bruno", 403)
    assert body["error"] == "model_unreadable"
    assert "bruno" in body["message"] and "alpha" in body["message"]
    assert str(library_root) not in body["message"]
    # the rest of the site still lists
    names = [m["name"] for m in (await _get(client, "/api/models?site=alpha"))["models"]]
    assert names == ["ana", "Carla"]


# -- 3. a file rewritten in place -------------------------------------------------------------


async def test_a_file_rewritten_in_place_shows_within_a_sweep(make_client: ClientFactory, library_root: Path) -> None:
    age_folders(library_root)
    client = await make_client(watch_interval_s=NO_SWEEPS)
    watcher = client.app[keys.WATCHER]
    model_url, models_url = "/api/model?site=alpha&model=bruno", "/api/models?site=alpha"
    before = await _get(client, model_url)
    await _get(client, model_url)  # cached now
    await _get(client, models_url)
    folder = library_root / "alpha" / "bruno"
    folder_mtime = folder.stat().st_mtime_ns
    target = folder / "a.jpg"
    with open(target, "r+b") as handle:  # same inode, same name: no rename, no folder change
        handle.seek(0, os.SEEK_END)
        handle.write(b"\0" * 1000)
    os.utime(target, (1_800_000_000, 1_800_000_000))
    assert folder.stat().st_mtime_ns == folder_mtime
    new_size = target.stat().st_size

    await watcher.sweep()
    model = await _get(client, model_url)
    [a] = [m for m in model["images"] if m["path"] == "a.jpg"]
    assert (a["size"], a["mtime"]) == (new_size, 1_800_000_000)
    assert model["bytes"] == before["bytes"] + 1000
    bruno = next(m for m in (await _get(client, models_url))["models"] if m["name"] == "bruno")
    assert (bruno["bytes"], bruno["mtime"]) == (model["bytes"], 1_800_000_000)


async def test_an_unchanged_model_stays_cached_across_sweeps(make_client: ClientFactory, library_root: Path) -> None:
    age_folders(library_root)
    client = await make_client(watch_interval_s=NO_SWEEPS)
    catalog, watcher = client.app[keys.CATALOG], client.app[keys.WATCHER]
    await _get(client, "/api/model?site=alpha&model=bruno")
    await watcher.sweep()
    hits = catalog.model_info_cache.hits
    await _get(client, "/api/model?site=alpha&model=bruno")
    assert catalog.model_info_cache.hits == hits + 1


# -- 4. the library root renamed away with warm caches ----------------------------------------

ROUTES = (
    "/api/sites",
    "/api/models?site=alpha",
    "/api/model?site=alpha&model=ana",
    "/media/alpha/ana/img1.jpg",
    "/thumb/alpha/ana/img1.jpg",
)


async def _assert_all_unavailable(client: Client, root: Path) -> None:
    for url in ROUTES:
        response = await client.get(url)
        text = await response.text()
        assert response.status == 503, (url, text)
        assert (await response.json())["error"] == "library_unavailable", url
        assert str(root.parent) not in text


@pytest.fixture
async def warm_client(make_client: ClientFactory, library_root: Path) -> Client:
    age_folders(library_root)
    client = await make_client(watch_interval_s=NO_SWEEPS)
    for url in ROUTES:
        assert (await client.get(url)).status == 200, url
    return client


async def test_a_vanished_root_answers_503_before_the_watcher_notices(warm_client: Client, library_root: Path) -> None:
    watcher = warm_client.app[keys.WATCHER]
    os.rename(library_root, library_root.with_name("unmounted"))
    for site in ("alpha", "beta", ROOT_KEY):  # the caches are stale (a change was seen before the rename)
        watcher.bump(site)
    await _assert_all_unavailable(warm_client, library_root)


async def test_a_vanished_root_answers_503_once_the_watcher_noticed(warm_client: Client, library_root: Path) -> None:
    watcher = warm_client.app[keys.WATCHER]
    moved = library_root.with_name("unmounted")
    os.rename(library_root, moved)
    await watcher.sweep()
    assert not watcher.available
    await _assert_all_unavailable(warm_client, library_root)
    os.rename(moved, library_root)
    await watcher.sweep()
    assert (await warm_client.get("/api/sites")).status == 200


async def test_disk_checked_routes_answer_503_with_fresh_caches(warm_client: Client, library_root: Path) -> None:
    os.rename(library_root, library_root.with_name("unmounted"))
    for url in ROUTES[2:]:  # each of these looks at the disk on every request
        response = await warm_client.get(url)
        assert response.status == 503, url
        assert (await response.json())["error"] == "library_unavailable"


# -- 5. search folds case, normalisation and accents ------------------------------------------


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("joao", "joão"),
        ("JOÃO", "joão"),
        ("joão", unicodedata.normalize("NFD", "joão")),
        (unicodedata.normalize("NFD", "joão"), "joão"),
        ("é", unicodedata.normalize("NFD", "Éva")),
        ("strasse", "Straße"),
        ("zoe", "Zoë"),
    ],
)
def test_search_fold_finds(query: str, name: str) -> None:
    assert search_fold(query) in search_fold(name)


def test_search_fold_keeps_different_letters_apart() -> None:
    assert search_fold("joa") not in search_fold("jõ")
    assert search_fold("ana") != search_fold("anna")


async def test_search_finds_names_whatever_their_form(tmp_path: Path, make_client: ClientFactory) -> None:
    root = tmp_path / "lib"
    make_model(root, "site", "joão", ["a.jpg"])
    make_model(root, "site", unicodedata.normalize("NFD", "Éva"), ["b.jpg"], seed=2)
    make_model(root, "site", "bruno", ["c.jpg"], seed=3)
    client = await make_client(models_dir=root)

    async def found(q: str) -> list[str]:
        body = await _get(client, "/api/models?site=site&q=" + q)
        return [unicodedata.normalize("NFC", m["name"]) for m in body["models"]]

    assert await found("joao") == ["joão"]
    assert await found("JO%C3%83O") == ["joão"]  # JOÃO
    assert await found("%C3%A9") == ["Éva"]  # NFC é finds the NFD folder
    assert await found("e%CC%81v") == ["Éva"]  # NFD é too
    assert await found("eva") == ["Éva"]
    assert await found("xyz") == []
    echoed = await _get(client, "/api/models?site=site&q=e%CC%81v")
    assert echoed["q"] == "e\u0301v"  # the body echoes q as given (NFD stays NFD)
    assert echoed["models"][0]["name"] == unicodedata.normalize("NFD", "Éva")  # the folder's own name
