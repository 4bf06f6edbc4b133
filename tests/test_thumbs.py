"""GET /thumb: real thumbnails made in worker processes, cached on disk, bounded, validated."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import os
import signal
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from yarl import URL

from server import keys
from server.cache.thumbnails import ThumbnailCache, warm_up
from server.infra.atomic import is_temp
from server.infra.pools import WorkerPool

from .conftest import Client, ClientFactory
from .helpers import jpeg_bytes, make_video, write
from .http_support import lint_response

CI = os.environ.get("CI") == "true"


def image_of(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def thumbnail_files(cache_dir: Path) -> list[Path]:
    return [p for p in (cache_dir / "thumbnails").rglob("*.jpg") if not is_temp(p.name)]


async def stats(client: Client) -> dict[str, Any]:
    response = await client.get("/api/cache_stats")
    assert response.status == 200
    body: dict[str, Any] = (await response.json())["thumbnail_cache"]
    return body


async def test_default_width_is_320_on_the_longest_side(client: Client) -> None:
    response = await client.get("/thumb/alpha/ana/img1.jpg")
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Cache-Control"] == "public, max-age=86400"
    assert "ETag" in response.headers and "Last-Modified" in response.headers
    image = image_of(await response.read())
    assert image.format == "JPEG"
    assert image.size == (320, 240)  # the source is 32x24: the aspect ratio is kept


@pytest.mark.parametrize(("width", "size"), [(64, (48, 64)), (1024, (768, 1024))])
async def test_width_sets_the_longest_side(client: Client, width: int, size: tuple[int, int]) -> None:
    response = await client.get(f"/thumb/alpha/ana/IMG3.PNG?w={width}")  # a 24x32 portrait PNG
    assert response.status == 200
    assert image_of(await response.read()).size == size


async def test_nested_model_and_non_ascii_names(client: Client) -> None:
    response = await client.get(URL("/thumb/beta/patreon/jo%C3%A3o/p1.jpg", encoded=True))
    assert response.status == 200
    assert image_of(await response.read()).size == (320, 240)


@pytest.mark.parametrize("query", ["w=63", "w=1025", "w=abc", "w=1e3", "w=-5", "w=100&w=200", "width=100", "w=%FF"])
async def test_bad_width_is_a_json_400(client: Client, query: str, library_root: Path) -> None:
    response = await client.get(URL(f"/thumb/alpha/ana/img1.jpg?{query}", encoded=True))
    assert response.status == 400
    body = await response.json()
    assert set(body) == {"error", "message"} and body["message"]
    assert str(library_root) not in body["message"]


async def test_width_is_checked_before_the_path(client: Client) -> None:
    response = await client.get("/thumb/nope/nobody/none.jpg?w=9")
    assert response.status == 400


@pytest.mark.parametrize(
    "path",
    [
        "/thumb/alpha/ana/..%2F..%2F..%2Fetc%2Fpasswd",
        "/thumb/alpha/../../etc/passwd",
        "/thumb/%2e%2e/%2e%2e/etc/hostname.jpg",
        "/thumb/alpha/ana/%2Fetc%2Fhostname.jpg",
        "/thumb/alpha/ana/.hidden.jpg",
        "/thumb/alpha/ana/info.json",
        "/thumb/alpha/ana/img4.jpg.part",
        "/thumb/alpha/ana/missing.jpg",
        "/thumb/alpha/ana/evil.jpg",
        "/thumb/alpha%5Cana%5Cimg1.jpg",
        "/thumb/alpha/ana/img1.jpg%00.png",
    ],
)
async def test_traversal_and_non_media_are_refused(
    client: Client, library_root: Path, tmp_path: Path, path: str
) -> None:
    outside = write(tmp_path / "outside" / "secret.jpg", jpeg_bytes(5))
    (library_root / "alpha" / "ana" / "evil.jpg").symlink_to(outside)
    response = await client.get(URL(path, encoded=True))
    assert response.status in (400, 404), path
    body = await response.json()
    assert set(body) == {"error", "message"}
    assert str(tmp_path) not in body["message"] and "root:" not in body["message"]
    assert thumbnail_files(tmp_path / "cache") == []


async def test_second_request_is_a_cache_hit(client: Client, tmp_path: Path) -> None:
    first = await client.get("/thumb/alpha/ana/img2.jpg?w=200")
    body = await first.read()
    before = await stats(client)
    assert before["generated"] == 1 and before["misses"] == 1 and before["entries"] == 1
    assert before["bytes"] == len(body)
    assert len(thumbnail_files(tmp_path / "cache")) == 1

    second = await client.get("/thumb/alpha/ana/img2.jpg?w=200")
    assert await second.read() == body
    assert second.headers["ETag"] == first.headers["ETag"]
    after = await stats(client)
    assert after["generated"] == 1 and after["hits"] == 1

    other_width = await client.get("/thumb/alpha/ana/img2.jpg?w=201")
    assert image_of(await other_width.read()).size == (201, 151)
    assert (await stats(client))["generated"] == 2


async def test_conditional_and_range_requests(client: Client) -> None:
    first = await client.get("/thumb/alpha/ana/img1.jpg")
    body = await first.read()
    not_modified = await client.get("/thumb/alpha/ana/img1.jpg", headers={"If-None-Match": first.headers["ETag"]})
    assert not_modified.status == 304
    assert await not_modified.read() == b""
    partial = await client.get("/thumb/alpha/ana/img1.jpg", headers={"Range": "bytes=10-99"})
    assert partial.status == 206
    assert await partial.read() == body[10:100]
    assert partial.headers["Content-Range"] == f"bytes 10-99/{len(body)}"
    head = await client.head("/thumb/alpha/ana/img1.jpg")
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(body)


async def test_changed_source_gets_a_new_thumbnail(client: Client, library_root: Path) -> None:
    source = library_root / "alpha" / "bruno" / "a.jpg"
    first = await client.get("/thumb/alpha/bruno/a.jpg")
    write(source, jpeg_bytes(200, size=(40, 20)), mtime=1_800_000_000)
    second = await client.get("/thumb/alpha/bruno/a.jpg")
    assert second.headers["ETag"] != first.headers["ETag"]
    assert image_of(await second.read()).size == (320, 160)


async def test_concurrent_requests_make_one_thumbnail(client: Client) -> None:
    responses = await asyncio.gather(*(client.get("/thumb/alpha/ana/img10.jpg?w=300") for _ in range(12)))
    bodies = {await r.read() for r in responses}
    assert [r.status for r in responses] == [200] * 12
    assert len(bodies) == 1
    figures = await stats(client)
    assert figures["generated"] == 1
    assert figures["misses"] == 1 and figures["hits"] == 11


async def test_clear_cache_removes_thumbnails(client: Client, tmp_path: Path) -> None:
    await (await client.get("/thumb/alpha/ana/img1.jpg")).read()
    assert thumbnail_files(tmp_path / "cache")
    cleared = await client.post("/api/clear_cache")
    body = await cleared.json()
    assert body["thumbnail_cache"] == "cleared"
    assert "thumbnail_cache" in body["message"]
    assert thumbnail_files(tmp_path / "cache") == []
    figures = await stats(client)
    assert figures["entries"] == 0 and figures["bytes"] == 0
    again = await client.get("/thumb/alpha/ana/img1.jpg")
    assert again.status == 200
    assert (await stats(client))["generated"] == 2


async def test_cache_survives_a_restart(make_client: ClientFactory, tmp_path: Path) -> None:
    first = await make_client()
    body = await (await first.get("/thumb/alpha/ana/img1.jpg")).read()
    await first.close()
    second = await make_client()
    figures = await stats(second)
    assert figures["entries"] == 1 and figures["bytes"] == len(body)
    assert await (await second.get("/thumb/alpha/ana/img1.jpg")).read() == body
    assert (await stats(second))["generated"] == 0


async def test_undecodable_image_gets_a_placeholder(client: Client, library_root: Path) -> None:
    write(library_root / "alpha" / "ana" / "broken.jpg", b"\xff\xd8\xff this is not really a JPEG")
    response = await client.get("/thumb/alpha/ana/broken.jpg")
    assert response.status == 200
    assert image_of(await response.read()).size == (320, 240)
    assert (await stats(client))["placeholders"] == 1


async def test_video_without_ffmpeg_is_a_placeholder(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    client = await make_client()
    response = await client.get("/thumb/alpha/ana/clip.mp4")
    assert response.status == 200
    image = image_of(await response.read()).convert("RGB")
    assert image.size == (320, 180)  # a 16:9 card
    r, g, b = image.getpixel((5, 5))  # type: ignore[misc]
    assert abs(r - 46) < 12 and abs(g - 52) < 12 and abs(b - 64) < 12
    figures = await stats(client)
    assert figures["video_frames"] == "placeholder" and figures["placeholders"] == 1


@pytest.fixture
def real_video(library_root: Path) -> Path:
    return make_video(library_root / "alpha" / "ana" / "real.mp4", 2, "-pix_fmt", "yuv420p")


async def test_video_with_ffmpeg_is_a_frame(client: Client, real_video: Path) -> None:
    response = await client.get("/thumb/alpha/ana/real.mp4?w=160")
    assert response.status == 200
    image = image_of(await response.read()).convert("RGB")
    assert image.size == (160, 120)
    colours = {image.getpixel((x, 30)) for x in range(5, 160, 20)}  # testsrc has coloured bars
    assert len(colours) > 4
    figures = await stats(client)
    assert figures["video_frames"] == "ffmpeg" and figures["placeholders"] == 0


def counter(figures: dict[str, object], name: str) -> int:
    """One of the cache's counters from its stats."""
    value = figures[name]
    assert isinstance(value, int), figures
    return value


@pytest.fixture
async def small_cache(tmp_path: Path) -> AsyncIterator[ThumbnailCache]:
    pool = WorkerPool("thumbnails", 2, warm=warm_up)
    await pool.start()
    cache = ThumbnailCache(tmp_path / "thumbs", pool, max_bytes=12_000, max_concurrent=2, eviction_grace_s=0)
    yield cache
    await pool.close()


async def test_cache_is_bounded_and_work_is_capped(small_cache: ThumbnailCache, tmp_path: Path) -> None:
    sources = [write(tmp_path / "src" / f"{i}.jpg", jpeg_bytes(i, size=(300, 200))) for i in range(16)]
    paths = await asyncio.gather(*(small_cache.get(s, False, 256) for s in sources))
    on_disk = sum(p.stat().st_size for p in (tmp_path / "thumbs").rglob("*.jpg"))
    figures = small_cache.stats()
    assert on_disk <= 12_000
    assert figures["bytes"] == on_disk
    assert counter(figures, "evictions") > 0
    assert figures["generated"] == 16
    assert 1 <= small_cache.peak_running <= 2  # never more than max_concurrent jobs at once
    assert paths[-1].is_file() or paths[-2].is_file()  # the newest stay


async def test_width_outside_range_is_refused_by_the_cache(small_cache: ThumbnailCache, tmp_path: Path) -> None:
    source = write(tmp_path / "src" / "a.jpg", jpeg_bytes(1))
    with pytest.raises(ValueError):
        await small_cache.get(source, False, 2000)


async def test_pool_uses_forkserver() -> None:
    pool = WorkerPool("thumbnails", 1, warm=warm_up)
    await pool.start()
    try:
        context = pool.executor._mp_context  # type: ignore[attr-defined]
        assert context.get_start_method() == "forkserver"
    finally:
        await pool.close()


class GatedExecutor(concurrent.futures.ThreadPoolExecutor):
    """One worker thread whose jobs wait for `gate` before running."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.gate = threading.Event()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        def gated() -> Any:
            self.gate.wait(30)
            return fn(*args, **kwargs)

        return super().submit(gated)


async def test_abandoned_requests_do_not_make_thumbnails(tmp_path: Path) -> None:
    """A grid scrolled past: requests cancelled while queued never reach a worker."""
    gated = GatedExecutor()  # the first job holds the only slot until the gate opens
    pool = WorkerPool("thumbnails", 1)
    pool.executor = gated
    cache = ThumbnailCache(tmp_path / "thumbs", pool, max_concurrent=1)
    try:
        sources = [write(tmp_path / "src" / f"{i}.jpg", jpeg_bytes(i, size=(600, 400))) for i in range(12)]
        first_task = asyncio.create_task(cache.get(sources[0], False, 128))
        while cache.peak_running == 0:
            await asyncio.sleep(0.005)
        queued = [asyncio.create_task(cache.get(s, False, 128)) for s in sources[1:]]
        while counter(cache.stats(), "in_flight") < len(sources):
            await asyncio.sleep(0.005)
        for task in queued:
            task.cancel()
        await asyncio.gather(*queued, return_exceptions=True)
        gated.gate.set()
        first = await first_task
        await asyncio.sleep(0.1)
        figures = cache.stats()
        assert first.is_file()
        assert figures["generated"] == 1
        assert figures["abandoned"] == len(queued)
        assert figures["in_flight"] == 0
        assert len(list((tmp_path / "thumbs").rglob("*.jpg"))) == 1
        again = await cache.get(sources[5], False, 128)  # asked again later: made then
        assert again.is_file()
    finally:
        await pool.close()


async def test_cache_buster_is_accepted_and_validated(client: Client) -> None:
    plain = await client.get("/thumb/alpha/ana/img1.jpg?w=100")
    busted = await client.get("/thumb/alpha/ana/img1.jpg?w=100&v=1700000000")
    assert busted.status == 200 and await busted.read() == await plain.read()
    too_long = await client.get("/thumb/alpha/ana/img1.jpg?v=" + "9" * 65)
    assert too_long.status == 400


GRID = 60  # below the test client's 100 connections


async def test_a_big_grid_queues_without_starving_other_requests(client: Client, library_root: Path) -> None:
    """A grid of thumbnails asked at once: at most max_concurrent run, the catalog still answers."""
    for index in range(GRID):
        write(library_root / "alpha" / "grid" / f"g{index:03d}.jpg", jpeg_bytes(index, size=(200, 150)))
    cache = client.app[keys.THUMBNAILS]
    real_pool, gated = cache.pool.executor, GatedExecutor()
    cache.pool.executor = gated  # every job waits at the gate, so the queue is observable
    try:
        requests = [asyncio.create_task(client.get(f"/thumb/alpha/grid/g{i:03d}.jpg")) for i in range(GRID)]
        while counter(cache.stats(), "in_flight") < GRID:
            await asyncio.sleep(0.01)
        sites = await client.get("/api/sites")
        assert sites.status == 200
        assert cache.stats()["in_flight"] == GRID  # answered while the whole grid was still queued
        assert cache.peak_running <= cache.max_concurrent
        gated.gate.set()
        responses = await asyncio.gather(*requests)
        assert [r.status for r in responses] == [200] * GRID
        assert cache.peak_running == cache.max_concurrent
        assert cache.stats()["generated"] == GRID
    finally:
        gated.gate.set()
        cache.pool.executor = real_pool
        gated.shutdown(wait=True)


async def test_a_killed_worker_is_replaced(client: Client) -> None:
    first = await client.get("/thumb/alpha/ana/img1.jpg")
    assert first.status == 200
    cache = client.app[keys.THUMBNAILS]
    pool = cache.pool.executor
    assert isinstance(pool, concurrent.futures.ProcessPoolExecutor)
    for pid in list(pool._processes):
        os.kill(pid, signal.SIGKILL)
    responses = [await client.get(f"/thumb/alpha/ana/{name}") for name in ("img2.jpg", "img10.jpg", "IMG3.PNG")]
    assert [r.status for r in responses] == [200, 200, 200]
    assert cache.pool.executor is not pool
    assert cache.stats()["pool_restarts"] == 1


async def test_thumbnails_behind_a_token_are_private(make_client: ClientFactory) -> None:
    client = await make_client(auth_token="correct-horse-battery")
    refused = await client.get("/thumb/alpha/ana/img1.jpg")
    assert refused.status == 401
    response = await client.get("/thumb/alpha/ana/img1.jpg", headers={"Authorization": "Bearer correct-horse-battery"})
    assert response.status == 200
    assert response.headers["Cache-Control"] == "private, max-age=86400"


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/thumb/alpha/ana/img1.jpg", {"Accept-Encoding": "gzip"}),
        ("/thumb/alpha/ana/img1.jpg?w=64", {"Range": "bytes=0-99"}),
        ("/thumb/alpha/ana/img1.jpg?w=9", {}),
        ("/thumb/alpha/ana/missing.jpg", {}),
    ],
)
async def test_thumbnail_responses_pass_the_http_linter(client: Client, url: str, headers: dict[str, str]) -> None:
    assert await lint_response(client, url, headers) == []
