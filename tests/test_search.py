"""GET /api/search: models and media files of every site, folded like /api/models, bounded and fresh."""

from __future__ import annotations

import gzip
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys

from .conftest import ClientFactory
from .helpers import age_folders, eventually, jpeg_bytes, make_model, write
from .http_support import get_json

Client = TestClient[Any, Any]


async def test_finds_models_in_every_site_and_files_by_name(client: Client) -> None:
    body = await get_json(client, "/api/search?q=jo")
    assert [(m["site"], m["name"]) for m in body["models"]] == [("beta", "patreon/joão")]
    assert body["models"][0]["thumbnail"] == "/thumb/beta/patreon/jo%C3%A3o/p1.jpg"
    assert body["total_models"] == 1 and body["files"] == [] and body["complete"] is True
    files = await get_json(client, "/api/search?q=IMG1")
    assert [(f["site"], f["model"], f["path"], f["kind"]) for f in files["files"]] == [
        ("alpha", "ana", "img1.jpg", "image"),
        ("alpha", "ana", "img10.jpg", "image"),
    ]
    first = files["files"][0]
    assert first["url"] == "/media/alpha/ana/img1.jpg" and first["thumbnail"] == "/thumb/alpha/ana/img1.jpg"
    assert first["size"] == len(jpeg_bytes(1)) and first["mtime"] == 1_700_000_000
    videos = await get_json(client, "/api/search?q=.MP4")
    assert [(f["path"], f["kind"]) for f in videos["files"]] == [("clip.mp4", "video")]


async def test_sidecars_hidden_and_partial_files_are_never_found(client: Client) -> None:
    for q in ("info", "notes", "part", "hidden"):
        body = await get_json(client, f"/api/search?q={q}")
        assert body["files"] == [] and body["total_files"] == 0, q


@pytest.mark.parametrize("q", ["joao", "JOÃO", "jo%C3%A3o", "joa%CC%83o"])  # plain, upper, NFC, NFD
async def test_folds_case_accents_and_normalisation(client: Client, q: str) -> None:
    body = await get_json(client, f"/api/search?q={q}")
    assert [m["name"] for m in body["models"]] == ["patreon/joão"]


async def test_an_nfd_file_name_is_found_by_nfc_text(client: Client, library_root: Path) -> None:
    write(library_root / "beta" / "patreon" / "joão" / unicodedata.normalize("NFD", "café.jpg"), jpeg_bytes(5))
    body = await get_json(client, "/api/search?q=caf%C3%A9")
    assert [f["model"] for f in body["files"]] == ["patreon/joão"]


async def test_limit_bounds_each_kind_and_totals_count_all(client: Client, library_root: Path) -> None:
    for index in range(4):
        make_model(library_root, "gamma", f"shoot{index}", [f"shoot{index}_{i}.jpg" for i in range(3)], seed=index)
    body = await get_json(client, "/api/search?q=shoot&limit=2")
    assert [m["name"] for m in body["models"]] == ["shoot0", "shoot1"] and body["total_models"] == 4
    assert [f["path"] for f in body["files"]] == ["shoot0_0.jpg", "shoot0_1.jpg"] and body["total_files"] == 12
    assert (await get_json(client, "/api/search?q=shoot"))["total_files"] == 12


@pytest.mark.parametrize(
    "query",
    ["", "q=", "limit=5", "q=a&limit=0", "q=a&limit=501", "q=a&limit=x", "q=" + "a" * 201, "q=a%00b", "q=%FF",
     "q=a&q=b", "q=a&site=alpha"],
)  # fmt: skip
async def test_bad_parameters_are_400_json(client: Client, query: str) -> None:
    body = await get_json(client, f"/api/search?{query}", status=400)
    assert set(body) == {"error", "message"}


async def test_bounds_are_inclusive(client: Client) -> None:
    assert (await get_json(client, "/api/search?q=a&limit=500"))["limit"] == 500
    assert (await get_json(client, "/api/search?q=a&limit=1"))["limit"] == 1
    assert (await get_json(client, "/api/search?q=" + "a" * 200))["q"] == "a" * 200


async def test_etag_304_and_gzip(client: Client, library_root: Path) -> None:
    for index in range(30):
        make_model(library_root, "gamma", f"set{index:02}", ["a.jpg"], seed=index)
    response = await client.get("/api/search?q=set", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert response.status == 200 and response.headers["Content-Encoding"] == "gzip"
    assert len(await response.read()) < len(gzip.decompress(await response.read()))
    etag = response.headers["ETag"]
    again = await client.get("/api/search?q=set", headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status == 304


async def test_a_new_folder_and_file_show_up_after_a_sweep(make_client: ClientFactory, library_root: Path) -> None:
    age_folders(library_root)
    client = await make_client()
    assert (await get_json(client, "/api/search?q=zed"))["models"] == []
    assert (await get_json(client, "/api/search?q=zed"))["models"] == []  # now cached
    make_model(library_root, "alpha", "zed", ["zed1.jpg"], seed=3)  # a new model in a known site
    make_model(library_root, "omega", "other", ["zed2.jpg"], seed=4)  # a new site

    async def found() -> bool:
        body = await get_json(client, "/api/search?q=zed")
        return [m["name"] for m in body["models"]] == ["zed"] and [f["path"] for f in body["files"]] == [
            "zed1.jpg",
            "zed2.jpg",
        ]

    await eventually(found, within=5)
    (library_root / "alpha" / "zed" / "zed1.jpg").rename(library_root / "alpha" / "zed" / "renamed.jpg")

    async def renamed() -> bool:
        body = await get_json(client, "/api/search?q=zed")
        return [f["path"] for f in body["files"]] == ["zed2.jpg"]

    await eventually(renamed, within=5)


async def test_walks_and_file_indexes_are_reused_across_queries(make_client: ClientFactory, library_root: Path) -> None:
    age_folders(library_root)
    client = await make_client()
    await get_json(client, "/api/search?q=img")
    catalog = client.app[keys.CATALOG]
    walks, misses = catalog.walks, catalog.site_index_cache.misses
    assert walks == 2
    await get_json(client, "/api/search?q=clip")  # another query: no new walk, no new file index
    assert (catalog.walks, catalog.site_index_cache.misses) == (walks, misses)
