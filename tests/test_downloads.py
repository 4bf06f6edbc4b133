"""GET /api/download through the real app: real readers check every archive."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import subprocess
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pypdf
import pytest
from aiohttp.test_utils import TestClient
from PIL import Image

from server import keys
from server.app import create_app
from server.cache.downloads import CacheEntry
from server.config import Config, ConfigError, load_config
from server.downloads import selection as selection_module
from server.downloads.service import DownloadService, auto_threshold_mb
from server.errors import Conflict

from .conftest import Client, ClientFactory
from .helpers import jpeg_bytes, make_model, write
from .http_support import check_zip, get, settle

ANA = ["img1.jpg", "img2.jpg", "IMG3.PNG", "img10.jpg", "clip.mp4"]


def service_of(client: Client) -> DownloadService:
    return client.app[keys.DOWNLOADS]


@pytest.mark.parametrize("threshold_mb", [100, 0])
async def test_zip_of_one_model(
    make_client: ClientFactory, library_root: Path, tmp_path: Path, threshold_mb: int
) -> None:
    client = await make_client(threshold_mb=threshold_mb)
    status, headers, body = await get(client, "/api/download?site=alpha&model=ana&format=zip")
    assert status == 200
    assert headers["Content-Type"] == "application/zip"
    assert int(headers["Content-Length"]) == len(body)
    assert headers["X-Cache"] == "MISS"
    assert headers["X-Download-Strategy"] == ("buffer" if threshold_mb else "stream")
    archive = check_zip(body, tmp_path)
    assert archive.namelist() == [f"ana/{n}" for n in ANA]
    for name in ANA:
        assert archive.read(f"ana/{name}") == (library_root / "alpha" / "ana" / name).read_bytes()
    await settle(client)


@pytest.mark.parametrize("threshold_mb", [100, 0])
async def test_hit_after_miss_serves_identical_bytes(make_client: ClientFactory, threshold_mb: int) -> None:
    client = await make_client(threshold_mb=threshold_mb)
    url = "/api/download?site=alpha&model=ana"
    _, first_headers, first = await get(client, url)
    await settle(client)
    status, headers, again = await get(client, url)
    assert status == 200
    assert headers["X-Cache"] == "HIT"
    assert headers["X-Download-Strategy"] == "cache"
    assert again == first
    assert int(headers["Content-Length"]) == len(again)
    assert headers["ETag"] == first_headers["ETag"]
    assert headers["Accept-Ranges"] == "bytes"
    stats = (await (await client.get("/api/cache_stats")).json())["download_cache"]
    assert stats["entries"] == 1 and stats["bytes"] == len(first)
    assert stats["hits"] == 1 and stats["misses"] == 1 and stats["index"] == "local"


@pytest.mark.parametrize("threshold_mb", [100, 0])
async def test_a_hit_stats_the_files_and_opens_none(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch, threshold_mb: int
) -> None:
    """A cached archive's bytes are already made: a hit needs each file's size and mtime (its
    key), not the open that a build makes to promise only readable files."""
    client = await make_client(threshold_mb=threshold_mb)
    url = "/api/download?site=alpha&model=ana"
    _, _, first = await get(client, url)
    await settle(client)
    opened: list[str] = []
    real_readable_file = selection_module._readable_file

    def counting(path: str, shown: str) -> os.stat_result | None:
        opened.append(shown)
        return real_readable_file(path, shown)

    monkeypatch.setattr(selection_module, "_readable_file", counting)
    status, headers, again = await get(client, url)
    assert (status, headers["X-Cache"], again) == (200, "HIT", first)
    assert opened == []
    # a miss still opens every file before anything is built
    _, headers, _ = await get(client, "/api/download?site=alpha&model=ana&format=pdf")
    assert headers["X-Cache"] == "MISS"
    assert sorted(opened) == sorted(f"ana/{name}" for name in ANA)
    await settle(client)


async def test_changed_file_changes_the_key(make_client: ClientFactory, library_root: Path, tmp_path: Path) -> None:
    client = await make_client()
    url = "/api/download?site=alpha&model=bruno"
    _, first_headers, first = await get(client, url)
    await settle(client)
    target = library_root / "alpha" / "bruno" / "a.jpg"
    new_bytes = jpeg_bytes(77, (40, 30))
    write(target, new_bytes, mtime=1_800_000_000)  # same name, new content: the folder mtime may not move
    _, headers, body = await get(client, url)
    assert headers["X-Cache"] == "MISS"
    assert headers["ETag"] != first_headers["ETag"]
    assert check_zip(body, tmp_path).read("bruno/a.jpg") == new_bytes
    assert body != first


async def test_range_and_if_range_on_a_hit(make_client: ClientFactory) -> None:
    client = await make_client()
    url = "/api/download?site=alpha&model=ana"
    _, headers, full = await get(client, url)
    await settle(client)
    status, part_headers, part = await get(client, url, headers={"Range": "bytes=100-1099"})
    assert status == 206
    assert part == full[100:1100]
    assert part_headers["Content-Range"] == f"bytes 100-1099/{len(full)}"
    assert part_headers["X-Cache"] == "HIT"
    status, _, resumed = await get(client, url, headers={"Range": "bytes=1000-", "If-Range": headers["ETag"]})
    assert status == 206 and resumed == full[1000:]
    status, _, whole = await get(client, url, headers={"Range": "bytes=1000-", "If-Range": '"other"'})
    assert status == 200 and whole == full
    status, _, _ = await get(client, url, headers={"Range": f"bytes={len(full) + 10}-"})
    assert status == 416


async def test_pdf_pages_in_order_with_original_jpeg_bytes(
    make_client: ClientFactory, library_root: Path, tmp_path: Path
) -> None:
    client = await make_client()
    status, headers, body = await get(client, "/api/download?site=alpha&model=ana&format=pdf")
    assert status == 200
    assert headers["Content-Type"] == "application/pdf"
    assert int(headers["Content-Length"]) == len(body)
    reader: Any = pypdf.PdfReader(io.BytesIO(body))
    assert len(reader.pages) == 4  # the video is not a page
    folder = library_root / "alpha" / "ana"
    for page, name in zip(reader.pages, ["img1.jpg", "img2.jpg", "IMG3.PNG", "img10.jpg"], strict=True):
        xobject = page["/Resources"]["/XObject"]["/Im0"].get_object()
        if name.endswith(".jpg"):
            assert xobject["/Filter"] == "/DCTDecode"
            assert xobject.get_data() == (folder / name).read_bytes()
        else:
            original = Image.open(folder / name).convert("RGB")
            assert page.images[0].image.convert("RGB").tobytes() == original.tobytes()  # lossless
    result = subprocess.run(["pdfinfo", "-"], input=body, capture_output=True, check=False)
    assert result.returncode == 0 and re.search(rb"Pages:\s+4\n", result.stdout)


async def test_pdf_stream_strategy_and_hit(make_client: ClientFactory) -> None:
    client = await make_client(threshold_mb=0)
    url = "/api/download?site=alpha&model=ana&format=pdf"
    _, headers, first = await get(client, url)
    assert headers["X-Download-Strategy"] == "stream"
    assert int(headers["Content-Length"]) == len(first)
    await settle(client)
    _, headers, again = await get(client, url)
    assert headers["X-Cache"] == "HIT" and again == first
    assert len(pypdf.PdfReader(io.BytesIO(again)).pages) == 4


@pytest.mark.parametrize("threshold_mb", [100, 0])
async def test_pdfs_zip_of_a_site(make_client: ClientFactory, tmp_path: Path, threshold_mb: int) -> None:
    client = await make_client(threshold_mb=threshold_mb)
    status, headers, body = await get(client, "/api/download?site=alpha&format=pdfs-zip")
    assert status == 200
    assert int(headers["Content-Length"]) == len(body)
    archive = check_zip(body, tmp_path)
    assert archive.namelist() == ["ana.pdf", "bruno.pdf", "Carla.pdf"]
    pages = [len(pypdf.PdfReader(io.BytesIO(archive.read(n))).pages) for n in archive.namelist()]
    assert pages == [4, 2, 1]
    await settle(client)


async def test_whole_site_and_several_models(make_client: ClientFactory, tmp_path: Path) -> None:
    client = await make_client(threshold_mb=0)
    _, _, site = await get(client, "/api/download?site=beta")
    assert check_zip(site, tmp_path).namelist() == ["patreon/joão/p1.jpg", "patreon/joão/p2.jpg"]
    _, headers, several = await get(client, "/api/download?site=alpha&model=bruno&model=Carla&model=bruno")
    assert check_zip(several, tmp_path).namelist() == ["bruno/a.jpg", "bruno/b.webp", "Carla/only.jpg"]
    assert "filename*=UTF-8''alpha%20%E2%80%94%202%20models.zip" in headers["Content-Disposition"]
    await settle(client)


async def test_content_disposition_has_ascii_fallback_and_rfc5987_name(
    make_client: ClientFactory, library_root: Path
) -> None:
    make_model(library_root, "média-site", "ana", ["x.jpg"])
    client = await make_client()
    _, headers, _ = await get(client, "/api/download?site=m%C3%A9dia-site&model=ana")
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"media-site - ana.zip\"; filename*=UTF-8''m%C3%A9dia-site%20%E2%80%94%20ana.zip"
    )
    await settle(client)


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("site=alpha&model=ana&format=rar", 400, "bad_request"),
        ("site=alpha&model=ana&colour=red", 400, "unknown_parameter"),
        ("model=ana", 400, "missing_parameter"),
        ("site=alpha&model=", 400, "missing_parameter"),
        ("site=nowhere", 404, "not_found"),
        ("site=alpha&model=nobody", 404, "not_found"),
        ("site=alpha&model=..%2F..%2Fetc", 400, "invalid_path"),
        ("site=videos&model=only&format=pdf", 404, "not_found"),
        ("site=videos&format=pdfs-zip", 404, "not_found"),
    ],
)
async def test_bad_requests_are_json(
    make_client: ClientFactory, library_root: Path, query: str, status: int, code: str
) -> None:
    make_model(library_root, "videos", "only", ["a.mp4"])
    client = await make_client()
    response = await client.get(f"/api/download?{query}")
    assert response.status == status
    body = await response.json()
    assert body["error"] == code and body["message"]
    assert "Content-Disposition" not in response.headers


async def test_client_disconnect_mid_stream_leaves_nothing(make_client: ClientFactory, library_root: Path) -> None:
    big = library_root / "alpha" / "big" / "movie.mp4"
    big.parent.mkdir()
    with open(big, "wb") as handle:
        handle.truncate(96 * 1024 * 1024)  # sparse: fast to make, far more than socket buffers hold
    client = await make_client(threshold_mb=1)
    response = await client.get("/api/download?site=alpha&model=big")
    assert response.headers["X-Download-Strategy"] == "stream"
    await response.content.readexactly(64 * 1024)
    response.close()  # the client goes away mid-stream
    service = service_of(client)
    for _ in range(500):
        if not service.store.temp_files() and not service.streaming:
            break
        await asyncio.sleep(0.01)
    assert service.store.temp_files() == []
    assert (await service.store.index.totals()) == (0, 0)
    assert [p.name for p in service.store.folder.iterdir() if not p.name.startswith("index.sqlite3")] == []


async def test_missing_cache_file_is_rebuilt(make_client: ClientFactory) -> None:
    client = await make_client()
    url = "/api/download?site=alpha&model=ana"
    _, _, first = await get(client, url)
    await settle(client)
    service = service_of(client)
    (entry,) = await service.store.index.all_entries()
    service.store.path_of(entry).unlink()
    _, headers, again = await get(client, url)
    assert headers["X-Cache"] == "MISS" and again == first
    await settle(client)
    _, headers, third = await get(client, url)
    assert headers["X-Cache"] == "HIT" and third == first


async def test_eviction_keeps_the_cache_within_its_bound(make_client: ClientFactory) -> None:
    probe = await make_client()
    sizes = []
    for model in ("ana", "bruno"):
        _, _, body = await get(probe, f"/api/download?site=alpha&model={model}")
        sizes.append(len(body))
    await settle(probe)
    bound = max(sizes) + 10  # room for one archive, not two
    client = await make_client(download_cache_max_gb=bound / 1e9, cache_dir=probe.app[keys.CONFIG].cache_dir / "x")
    await get(client, "/api/download?site=alpha&model=ana")
    await settle(client)
    await get(client, "/api/download?site=alpha&model=bruno")
    await settle(client)
    store = service_of(client).store
    entries = await store.index.all_entries()
    assert [e.file.split(".")[0] for e in entries] == [(await _key_of(client, "bruno"))]
    stats = await store.stats()
    assert stats["bytes"] == sizes[1] <= stats["max_bytes"]  # type: ignore[operator]
    assert len([p for p in store.folder.iterdir() if not p.name.startswith("index.sqlite3")]) == 1
    _, headers, _ = await get(client, "/api/download?site=alpha&model=ana")
    assert headers["X-Cache"] == "MISS"


async def test_eviction_follows_the_hits_not_yet_written_to_the_index(make_client: ClientFactory) -> None:
    """Last-hit times reach the index in batches, and an eviction writes them first: the
    archive hit a moment ago stays, the one not hit since it was made goes."""
    probe = await make_client()
    sizes = {}
    for model in ("ana", "bruno", "Carla"):
        _, _, body = await get(probe, f"/api/download?site=alpha&model={model}")
        sizes[model] = len(body)
    await settle(probe)
    bound = sizes["ana"] + sizes["bruno"] + sizes["Carla"] - 1  # one of the three must go
    client = await make_client(download_cache_max_gb=bound / 1e9, cache_dir=probe.app[keys.CONFIG].cache_dir / "y")
    for model in ("ana", "bruno"):
        await get(client, f"/api/download?site=alpha&model={model}")
        await settle(client)
    _, headers, _ = await get(client, "/api/download?site=alpha&model=ana")  # ana: hit after bruno was made
    assert headers["X-Cache"] == "HIT"
    await get(client, "/api/download?site=alpha&model=Carla")
    await settle(client)
    kept = {e.file.split(".")[0] for e in await service_of(client).store.index.all_entries()}
    assert kept == {await _key_of(client, "ana"), await _key_of(client, "Carla")}


async def _key_of(client: TestClient[Any, Any], model: str) -> str:
    response = await client.head(f"/api/download?site=alpha&model={model}")
    return response.headers["ETag"].strip('"')


async def test_local_index_survives_a_restart(make_client: ClientFactory) -> None:
    first = await make_client()
    _, _, body = await get(first, "/api/download?site=alpha&model=ana")
    await settle(first)
    await first.close()
    second = await make_client()
    _, headers, again = await get(second, "/api/download?site=alpha&model=ana")
    assert headers["X-Cache"] == "HIT" and again == body


async def test_leftover_temp_and_orphan_files_are_removed_at_start(
    make_config: Callable[..., Config], aiohttp_client: Any
) -> None:
    config = make_config()
    folder = config.cache_dir / "downloads"
    folder.mkdir(parents=True)
    (folder / "tmp-deadbeef.part").write_bytes(b"half an archive")
    (folder / "keep.txt").write_bytes(b"not ours")
    (folder / f"{'a' * 40}.zip").write_bytes(b"an archive no index entry names")
    client = await aiohttp_client(create_app(config))
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith("index.sqlite3")) == ["keep.txt"]
    _, headers, _ = await get(client, "/api/download?site=alpha&model=ana")
    await settle(client)
    await client.close()
    await aiohttp_client(create_app(config))  # a restart keeps what the index knows
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("index.sqlite3"))
    assert names == [f"{headers['ETag'].strip(chr(34))}.zip", "keep.txt"]


async def test_busy_builds_answer_503_with_retry_after(make_client: ClientFactory) -> None:
    client = await make_client(download_max_builds=1, download_queue_wait_s=0.05)
    async with service_of(client).build_slot():
        response = await client.get("/api/download?site=alpha&model=ana")
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["error"] == "downloads_busy"
    response = await client.get("/api/download?site=alpha&model=ana")
    assert response.status == 200
    await settle(client)


@pytest.mark.parametrize("threshold_mb", [100, 0])
async def test_concurrent_requests_for_one_archive(
    make_client: ClientFactory, tmp_path: Path, threshold_mb: int
) -> None:
    client = await make_client(threshold_mb=threshold_mb)
    url = "/api/download?site=alpha&format=zip"
    results = await asyncio.gather(*(get(client, url) for _ in range(4)))
    bodies = {body for _, _, body in results}
    assert len(bodies) == 1
    check_zip(bodies.pop(), tmp_path)
    await settle(client)
    assert (await service_of(client).store.index.totals())[0] == 1


async def test_clear_cache_empties_the_download_cache(make_client: ClientFactory) -> None:
    client = await make_client()
    await get(client, "/api/download?site=alpha&model=ana")
    await settle(client)
    response = await client.post("/api/clear_cache")
    assert (await response.json())["download_cache"] == "cleared"
    stats = (await (await client.get("/api/cache_stats")).json())["download_cache"]
    assert stats["entries"] == 0 and stats["bytes"] == 0
    _, headers, _ = await get(client, "/api/download?site=alpha&model=ana")
    assert headers["X-Cache"] == "MISS"
    await settle(client)


async def test_streaming_a_large_archive_keeps_memory_flat(make_client: ClientFactory, library_root: Path) -> None:
    folder = library_root / "alpha" / "large"
    folder.mkdir()
    for index in range(3):
        with open(folder / f"part{index}.mkv", "wb") as handle:
            handle.truncate(48 * 1024 * 1024)
    client = await make_client(threshold_mb=1)
    tracemalloc.start()
    try:
        response = await client.get("/api/download?site=alpha&model=large")
        received = 0
        async for chunk in response.content.iter_chunked(256 * 1024):
            received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == int(response.headers["Content-Length"]) > 144 * 1024 * 1024
    assert peak < 16 * 1024 * 1024, peak  # an archive of 144 MiB passes through a few MiB at most
    await settle(client)
    assert (await service_of(client).store.index.totals())[1] == received


async def test_openapi_documents_the_download_route(client: TestClient[Any, Any]) -> None:
    document = await (await client.get("/api/openapi.json")).json()
    operation = document["paths"]["/api/download"]["get"]
    assert [p["name"] for p in operation["parameters"] if p["in"] == "query"] == ["site", "model", "format"]
    assert {"200", "400", "404", "503"} <= set(operation["responses"])
    assert "DownloadCacheStats" in document["components"]["schemas"]


async def test_log_lines_of_the_original(make_client: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="archive_catalog")
    client = await make_client(threshold_mb=100)
    _, headers, _ = await get(client, "/api/download?site=alpha&model=ana")
    key = headers["ETag"].strip('"')
    await settle(client)
    await get(client, "/api/download?site=alpha&model=ana")
    messages = [r.getMessage() for r in caplog.records]
    for line in (
        "Download cache threshold: 100MB",
        "Estimated size: 0.00MB",
        "Using buffer cache strategy",
        f"Async cache saved: {key}",
        f"Cache hit for key: {key}",
    ):
        assert line in messages
    streamed = await make_client(threshold_mb=0, cache_dir=client.app[keys.CONFIG].cache_dir / "other")
    await get(streamed, "/api/download?site=alpha&model=bruno")
    assert "Using streaming cache strategy" in [r.getMessage() for r in caplog.records]
    await settle(streamed)


async def test_auto_threshold(make_client: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    assert auto_threshold_mb(8, 4_000_000_000) == 125
    assert auto_threshold_mb(8, 100_000_000) == 16
    assert auto_threshold_mb(1, 10**12) == 256
    caplog.set_level(logging.INFO, logger="archive_catalog")
    client = await make_client(threshold_mb=None, download_max_builds=2)
    expected = auto_threshold_mb(2)
    assert service_of(client).threshold_bytes == expected * 1_000_000
    assert f"Download cache threshold: {expected}MB" in [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("threshold_mb", [100, 0])
async def test_if_none_match_on_a_miss_answers_304_without_building(
    make_client: ClientFactory, threshold_mb: int
) -> None:
    client = await make_client(threshold_mb=threshold_mb)
    url = "/api/download?site=alpha&model=ana"
    _, headers, _ = await get(client, url)
    await settle(client)
    await client.post("/api/clear_cache")  # the archive is gone from the cache, its key is not
    response = await client.get(url, headers={"If-None-Match": headers["ETag"]})
    assert response.status == 304 and response.headers["X-Cache"] == "MISS"
    await settle(client)
    assert (await service_of(client).store.index.totals()) == (0, 0)


async def test_metrics_count_download_hits_and_misses(make_client: ClientFactory) -> None:
    client = await make_client()
    await get(client, "/api/download?site=alpha&model=ana")
    await settle(client)
    await get(client, "/api/download?site=alpha&model=ana")
    text = await (await client.get("/metrics")).text()
    assert re.search(r"^archive_catalog_download_cache_hits(_total)? 1\.0$", text, re.M), text
    assert re.search(r"^archive_catalog_download_cache_misses(_total)? 1\.0$", text, re.M)
    assert re.search(r"^archive_catalog_download_builds 0\.0$", text, re.M)
    assert re.search(r'^archive_catalog_downloads_total\{format="zip",strategy="cache"\} 1\.0$', text, re.M)
    assert re.search(r'^archive_catalog_downloads_total\{format="zip",strategy="buffer"\} 1\.0$', text, re.M)
    assert re.search(r'^archive_catalog_download_bytes_total\{strategy="cache"\} [1-9]', text, re.M)
    assert re.search(
        r'^archive_catalog_archive_build_seconds_count\{format="zip",strategy="buffer"\} 1\.0$', text, re.M
    )


async def test_a_file_shrinking_mid_stream_cuts_the_connection(make_client: ClientFactory, library_root: Path) -> None:
    big = library_root / "alpha" / "shrinks" / "movie.mp4"
    big.parent.mkdir()
    with open(big, "wb") as handle:
        handle.truncate(96 * 1024 * 1024)
    client = await make_client(threshold_mb=1)
    response = await client.get("/api/download?site=alpha&model=shrinks")
    expected = int(response.headers["Content-Length"])
    received = len(await response.content.readexactly(64 * 1024))
    os.truncate(big, 1024 * 1024)  # the promised Content-Length can no longer be kept
    with pytest.raises(aiohttp.ClientPayloadError):
        async for chunk in response.content.iter_chunked(1024 * 1024):
            received += len(chunk)
    assert received < expected
    service = service_of(client)
    for _ in range(500):
        if not service.store.temp_files() and not service.streaming:
            break
        await asyncio.sleep(0.01)
    assert service.store.temp_files() == []
    assert (await service.store.index.totals()) == (0, 0)


async def test_a_file_shrinking_under_an_in_memory_build_is_a_conflict(
    make_client: ClientFactory, library_root: Path
) -> None:
    client = await make_client()
    service = service_of(client)
    download = await service.prepare("alpha", ["ana"], "zip")
    assert download.strategy == "buffer"
    (library_root / "alpha" / "ana" / "img1.jpg").write_bytes(b"short")
    with pytest.raises(Conflict):
        await service.buffered(download)
    await settle(client)
    assert (await service.store.index.totals()) == (0, 0)


async def test_a_shared_in_memory_build_survives_its_first_requester_going_away(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    client = await make_client()
    service = service_of(client)
    download = await service.prepare("alpha", [], "zip")
    first = asyncio.create_task(service.buffered(download))
    await asyncio.sleep(0)  # the first request is building now
    second = asyncio.create_task(service.buffered(download))
    await asyncio.sleep(0)  # the second waits for the first's build
    first.cancel()
    body = await second
    assert first.cancelled()
    check_zip(bytes(body), tmp_path)
    await settle(client)


async def test_head_tells_the_size_without_building(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.head("/api/download?site=alpha&model=ana")
    assert response.status == 200 and response.headers["X-Cache"] == "MISS"
    size = int(response.headers["Content-Length"])
    await settle(client)
    assert (await service_of(client).store.index.totals()) == (0, 0)  # nothing was built
    _, _, body = await get(client, "/api/download?site=alpha&model=ana")
    assert len(body) == size
    await settle(client)


async def test_a_delete_drops_the_archives_that_hold_it(make_client: ClientFactory) -> None:
    client = await make_client()
    for query in ("site=alpha&model=ana", "site=alpha&model=bruno", "site=alpha", "site=beta"):
        await get(client, f"/api/download?{query}")
    await settle(client)
    store = service_of(client).store
    assert (await store.index.totals())[0] == 4
    response = await client.delete("/api/file?site=alpha&model=ana&path=img1.jpg")
    assert response.status == 200
    for _ in range(200):
        await settle(client)
        if (await store.index.totals())[0] == 2:
            break
        await asyncio.sleep(0.01)
    remaining = await store.index.all_entries()
    assert sorted((e.site, e.models) for e in remaining) == [("alpha", ("bruno",)), ("beta", ())]
    assert sorted(p.name for p in store.folder.iterdir() if p.suffix == ".zip") == sorted(e.file for e in remaining)


def test_which_archives_a_change_reaches() -> None:
    whole_site = CacheEntry("k", "k.zip", 1, 0.0, 0.0, "s", ())
    nested = CacheEntry("k", "k.zip", 1, 0.0, 0.0, "s", ("patreon/ana", "bruno"))
    assert whole_site.shows("s", "anything") and whole_site.shows("s", None)
    assert not whole_site.shows("t", None)
    assert nested.shows("s", "patreon/ana") and nested.shows("s", "patreon") and nested.shows("s", "bruno")
    assert not nested.shows("s", "patreon/an") and not nested.shows("s", "carla")


def test_download_max_builds_setting(library_root: Path) -> None:
    base = ["--models-dir", str(library_root)]
    assert load_config([*base, "--download-max-builds", "3"], {}).download_max_builds == 3
    assert load_config(base, {"DOWNLOAD_MAX_BUILDS": "5"}).download_max_builds == 5
    assert load_config(base, {}).download_max_builds is None  # 4 per core
    with pytest.raises(ConfigError, match="DOWNLOAD_MAX_BUILDS"):
        load_config([*base, "--download-max-builds", "0"], {})
    assert load_config([*base, "--threshold-mb", "auto"], {}).threshold_mb is None
