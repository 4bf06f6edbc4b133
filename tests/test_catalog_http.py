"""Catalog routes through a real app: listings, paging, validation, caching, freshness, 503."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys

from .conftest import ClientFactory
from .helpers import age_folders, eventually, jpeg_bytes, make_model, write
from .http_support import get_json

Client = TestClient[Any, Any]


@pytest.fixture
async def aged_client(make_client: ClientFactory, library_root: Path) -> Client:
    age_folders(library_root)
    return await make_client()


async def test_sites_with_counts(client: Client) -> None:
    body = await get_json(client, "/api/sites")
    assert body == {
        "sites": [
            {"name": "alpha", "models": 3, "files": 8, "bytes": body["sites"][0]["bytes"]},
            {"name": "beta", "models": 1, "files": 2, "bytes": body["sites"][1]["bytes"]},
        ]
    }
    assert body["sites"][0]["bytes"] > 0


async def test_models_page_fields(client: Client) -> None:
    body = await get_json(client, "/api/models?site=alpha")
    assert (body["site"], body["page"], body["limit"], body["total"]) == ("alpha", 1, 50, 3)
    ana = body["models"][0]
    assert {"name", "images", "videos", "bytes", "mtime", "thumbnail"} <= set(ana)
    assert (ana["name"], ana["images"], ana["videos"]) == ("ana", 4, 1)
    assert ana["thumbnail"] == "/thumb/alpha/ana/img1.jpg"
    nested = (await get_json(client, "/api/models?site=beta"))["models"][0]
    assert nested["name"] == "patreon/joão"
    assert nested["thumbnail"] == "/thumb/beta/patreon/jo%C3%A3o/p1.jpg"


async def test_paging_sorting_and_search(client: Client, library_root: Path) -> None:
    for index in range(12):
        make_model(library_root, "many", f"m{index}", ["a.jpg"] * 1 + [f"b{i}.jpg" for i in range(index)], seed=index)
    names = [m["name"] for m in (await get_json(client, "/api/models?site=many&limit=5&page=2"))["models"]]
    assert names == ["m5", "m6", "m7", "m8", "m9"]
    last = await get_json(client, "/api/models?site=many&limit=5&page=3")
    assert [m["name"] for m in last["models"]] == ["m10", "m11"] and last["total"] == 12
    beyond = await get_json(client, "/api/models?site=many&limit=5&page=9")
    assert beyond["models"] == [] and beyond["total"] == 12
    by_files = await get_json(client, "/api/models?site=many&sort=files&order=desc&limit=3")
    assert [m["name"] for m in by_files["models"]] == ["m11", "m10", "m9"]
    by_name_desc = await get_json(client, "/api/models?site=many&order=desc&limit=2")
    assert [m["name"] for m in by_name_desc["models"]] == ["m11", "m10"]
    search = await get_json(client, "/api/models?site=many&q=M1")
    assert [m["name"] for m in search["models"]] == ["m1", "m10", "m11"] and search["total"] == 3
    by_bytes = await get_json(client, "/api/models?site=many&sort=bytes&limit=1")
    assert by_bytes["models"][0]["name"] == "m0"
    by_mtime = await get_json(client, "/api/models?site=many&sort=mtime&order=desc")
    assert len(by_mtime["models"]) == 12


async def test_model_media_with_offset_and_limits(client: Client) -> None:
    body = await get_json(client, "/api/model?site=alpha&model=ana")
    assert (body["total_images"], body["total_videos"]) == (4, 1)
    assert [m["path"] for m in body["images"]] == ["img1.jpg", "img2.jpg", "IMG3.PNG", "img10.jpg"]
    first = body["images"][0]
    assert first["url"] == "/media/alpha/ana/img1.jpg"
    assert first["thumbnail"] == "/thumb/alpha/ana/img1.jpg"
    assert first["size"] == len(jpeg_bytes(1)) and first["mtime"] == 1_700_000_000
    assert body["bytes"] == sum(m["size"] for m in body["images"] + body["videos"])
    page = await get_json(client, "/api/model?site=alpha&model=ana&offset=1&images_limit=2&videos_limit=1")
    assert [m["path"] for m in page["images"]] == ["img2.jpg", "IMG3.PNG"]
    assert page["videos"] == []  # the offset applies to videos too
    assert page["total_images"] == 4
    nested = await get_json(client, "/api/model?site=beta&model=patreon/jo%C3%A3o")
    assert nested["images"][0]["url"] == "/media/beta/patreon/jo%C3%A3o/p1.jpg"


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/api/models", 400, "missing_parameter"),
        ("/api/models?site=", 400, "missing_parameter"),
        ("/api/models?site=nope", 404, "not_found"),
        ("/api/models?site=alpha&page=0", 400, "bad_request"),
        ("/api/models?site=alpha&page=-1", 400, "bad_request"),
        ("/api/models?site=alpha&page=1.5", 400, "bad_request"),
        ("/api/models?site=alpha&limit=501", 400, "bad_request"),
        ("/api/models?site=alpha&limit=99999999999999999999999", 400, "bad_request"),
        ("/api/models?site=alpha&sort=size", 400, "bad_request"),
        ("/api/models?site=alpha&order=up", 400, "bad_request"),
        ("/api/models?site=alpha&site=beta", 400, "bad_request"),
        ("/api/models?site=alpha&bogus=1", 400, "unknown_parameter"),
        ("/api/models?site=%ff%fe", 400, "invalid_encoding"),
        ("/api/models?site=%c0%ae%c0%ae", 400, "invalid_encoding"),
        ("/api/models?site=al%00pha", 400, "invalid_character"),
        ("/api/models?site=..", 400, "invalid_path"),
        ("/api/models?site=alpha%2F..", 400, "invalid_path"),
        ("/api/models?site=" + "a" * 2000, 400, "bad_request"),
        ("/api/model?site=alpha", 400, "missing_parameter"),
        ("/api/model?site=alpha&model=nope", 404, "not_found"),
        ("/api/model?site=alpha&model=../beta/patreon", 400, "invalid_path"),
        ("/api/model?site=alpha&model=/etc", 400, "invalid_path"),
        ("/api/model?site=alpha&model=ana&offset=-1", 400, "bad_request"),
        ("/api/model?site=alpha&model=ana&images_limit=0", 400, "bad_request"),
        ("/api/model?site=alpha&model=ana&videos_limit=5001", 400, "bad_request"),
        ("/api/sites?x=1", 400, "unknown_parameter"),
        ("/api/nothing", 404, "not_found"),
    ],
)
async def test_bad_requests_are_clear_json(client: Client, url: str, status: int, code: str) -> None:
    response = await client.get(url)
    assert response.status == status
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error"] == code and body["message"]
    assert str(client.app[keys.CONFIG].models_dir) not in body["message"]


async def test_clear_cache_wants_post(client: Client) -> None:
    response = await client.get("/api/clear_cache")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    body = await response.json()
    assert body["error"] == "method_not_allowed" and "POST" in body["message"]
    cleared = await client.post("/api/clear_cache")
    assert cleared.status == 200
    body = await cleared.json()
    assert body["status"] == "cleared" and body["memory_caches"] == "cleared" and body["message"]


async def test_body_over_one_mib_is_413(client: Client) -> None:
    response = await client.post("/api/clear_cache", data=io.BytesIO(b"x" * (1024 * 1024 + 1)))
    assert response.status == 413
    assert (await response.json())["error"] == "payload_too_large"


async def test_etag_and_304_for_json(client: Client) -> None:
    first = await client.get("/api/models?site=alpha")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    again = await client.get("/api/models?site=alpha", headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.headers["ETag"] == etag
    weak = await client.get("/api/models?site=alpha", headers={"If-None-Match": f'"nope", W/{etag}'})
    assert weak.status == 304
    other = await client.get("/api/models?site=alpha", headers={"If-None-Match": '"nope"'})
    assert other.status == 200


async def test_gzip_and_identity_never_share_an_etag(client: Client, library_root: Path) -> None:
    for index in range(30):
        make_model(library_root, "big", f"model-{index}", ["a.jpg"], seed=index)
    url = "/api/models?site=big&limit=100"
    zipped = await client.get(url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Vary"] == plain.headers["Vary"] == "Accept-Encoding"
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    raw = await zipped.read()
    assert gzip.decompress(raw) == await plain.read()
    refused = await client.get(url, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers
    small = await client.get("/api/sites", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers  # bodies under 1 KiB are not compressed
    cross = await client.get(url, headers={"Accept-Encoding": "identity", "If-None-Match": zipped.headers["ETag"]})
    assert cross.status == 200


async def test_head_on_json_routes(client: Client) -> None:
    response = await client.head("/api/sites")
    assert response.status == 200
    assert await response.read() == b""
    assert response.headers["ETag"]


async def test_cached_listings_are_served_without_rewalking(aged_client: Client) -> None:
    catalog = aged_client.app[keys.CATALOG]
    await get_json(aged_client, "/api/models?site=alpha")
    walks = catalog.walks
    for _ in range(5):
        await get_json(aged_client, "/api/models?site=alpha")
        await get_json(aged_client, "/api/model?site=alpha&model=ana")
    assert catalog.walks == walks
    stats = await get_json(aged_client, "/api/cache_stats")
    assert stats["models_cache"]["hits"] >= 5
    assert stats["model_info_cache"]["hits"] >= 4
    for name in ("models_cache", "model_info_cache", "media_list_cache"):
        assert set(stats[name]) >= {"size", "max_size", "ttl", "hits", "misses"}
        assert stats[name]["ttl"] == 1800
    assert (stats["models_cache"]["max_size"], stats["model_info_cache"]["max_size"]) == (500, 2000)
    assert stats["media_list_cache"]["max_size"] == 1000


async def test_added_removed_renamed_files_show_in_the_next_model_response(
    aged_client: Client, library_root: Path
) -> None:
    url = "/api/model?site=alpha&model=bruno"
    assert [m["path"] for m in (await get_json(aged_client, url))["images"]] == ["a.jpg", "b.webp"]
    await get_json(aged_client, url)  # now served from the cache
    folder = library_root / "alpha" / "bruno"
    write(folder / "c.jpg", jpeg_bytes(3))
    assert [m["path"] for m in (await get_json(aged_client, url))["images"]] == ["a.jpg", "b.webp", "c.jpg"]
    os.rename(folder / "a.jpg", folder / "z.jpg")
    assert [m["path"] for m in (await get_json(aged_client, url))["images"]] == ["b.webp", "c.jpg", "z.jpg"]
    os.remove(folder / "b.webp")
    assert [m["path"] for m in (await get_json(aged_client, url))["images"]] == ["c.jpg", "z.jpg"]


async def test_site_listings_follow_the_disk_within_a_sweep(aged_client: Client, library_root: Path) -> None:
    assert (await get_json(aged_client, "/api/models?site=alpha"))["total"] == 3
    assert (await get_json(aged_client, "/api/sites"))["sites"][0]["files"] == 8
    write(library_root / "alpha" / "bruno" / "new.jpg", jpeg_bytes(4))

    async def files_counted() -> bool:
        sites = await get_json(aged_client, "/api/sites")
        models = await get_json(aged_client, "/api/models?site=alpha")
        bruno = next(m for m in models["models"] if m["name"] == "bruno")
        return bool(sites["sites"][0]["files"] == 9 and bruno["images"] == 3)

    await eventually(files_counted, within=5)
    make_model(library_root, "alpha", "deep/new-model", ["x.jpg"])

    async def model_listed() -> bool:
        names = [m["name"] for m in (await get_json(aged_client, "/api/models?site=alpha"))["models"]]
        return "deep/new-model" in names

    await eventually(model_listed, within=5)
    make_model(library_root, "gamma", "g", ["x.jpg"])

    async def site_listed() -> bool:
        return [s["name"] for s in (await get_json(aged_client, "/api/sites"))["sites"]] == ["alpha", "beta", "gamma"]

    await eventually(site_listed, within=5)


async def test_missing_root_answers_503_and_keeps_the_caches(aged_client: Client, library_root: Path) -> None:
    await get_json(aged_client, "/api/models?site=alpha")
    await get_json(aged_client, "/api/model?site=alpha&model=ana")
    before = await get_json(aged_client, "/api/cache_stats")
    moved = library_root.with_name("unmounted")
    os.rename(library_root, moved)
    try:

        async def unavailable() -> bool:
            response = await aged_client.get("/api/models?site=alpha")
            return response.status == 503

        await eventually(unavailable, within=5)
        for url in ("/api/sites", "/api/model?site=alpha&model=ana", "/media/alpha/ana/img1.jpg"):
            response = await aged_client.get(url)
            assert response.status in (503, 404) if url.startswith("/media") else response.status == 503
            assert "unmounted" not in await response.text()
        during = await get_json(aged_client, "/api/cache_stats")
        for name in ("models_cache", "model_info_cache", "media_list_cache"):
            assert during[name]["size"] == before[name]["size"]
    finally:
        os.rename(moved, library_root)

    async def back() -> bool:
        return (await aged_client.get("/api/models?site=alpha")).status == 200

    await eventually(back, within=5)


async def test_search_echoes_the_query_as_given(client: Client) -> None:
    lower = await get_json(client, "/api/models?site=alpha&q=an")
    upper = await get_json(client, "/api/models?site=alpha&q=AN")
    assert (lower["q"], upper["q"]) == ("an", "AN")
    assert [m["name"] for m in lower["models"]] == [m["name"] for m in upper["models"]] == ["ana"]
