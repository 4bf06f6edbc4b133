"""Similar images over HTTP: the similar scan (its progress, cache, cancel, lock, cluster), the
groups at a threshold, and deletes and resolutions that move copies to the trash.

The library is made with Pillow in tmp_path: two scenes, each with copies resized, re-encoded
(JPEG, PNG, WebP) and a hard link, plus an unrelated picture, a file named like an image that
is not one, and a video."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from PIL import Image, ImageDraw, ImageFilter

from server import keys
from server.infra.events import ScanProgress
from server.library import natural_key
from server.similar import index, phash
from server.similar.cache import PerceptualCache
from server.similar.results import ImageRecord, SimilarResults, SimilarScan

from .conftest import Client, ClientFactory
from .helpers import eventually
from .redis_support import SHARED_URL, require_redis
from .scan_support import TERMINAL, run_scan, scan_results

# (path, scene, size, format): scene 1 has four copies, scene 3 two, scene 2 is alone
PICTURES = [
    ("alpha/ana/orig.jpg", 1, (600, 400), "JPEG"),
    ("alpha/ana/orig_copy.png", 1, (600, 400), "PNG"),
    ("beta/bob/big.webp", 1, (900, 600), "WEBP"),
    ("beta/bob/small.jpg", 1, (300, 200), "JPEG"),
    ("alpha/cara/pic.jpg", 3, (400, 300), "JPEG"),
    ("gamma/dan/pic_large.png", 3, (800, 600), "PNG"),
    ("alpha/ana/other.jpg", 2, (600, 400), "JPEG"),
]
SCENE_1 = [path for path, scene, _size, _format in PICTURES if scene == 1]
SCENE_3 = [path for path, scene, _size, _format in PICTURES if scene == 3]
IMAGES = len(PICTURES) + 1  # and broken.jpg, named like an image


def scene(seed: int, size: tuple[int, int]) -> Image.Image:
    """A picture of a few large soft shapes (what a perceptual hash sees), at `size`."""
    rng = random.Random(seed)
    base = Image.new("RGB", (480, 320), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(base)
    for _ in range(6):
        x, y = rng.randrange(-60, 420), rng.randrange(-60, 260)
        w, h = rng.randrange(80, 260), rng.randrange(80, 220)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((x, y, x + w, y + h), fill=colour)
        else:
            draw.rectangle((x, y, x + w, y + h), fill=colour)
    return base.filter(ImageFilter.GaussianBlur(3)).resize(size, Image.Resampling.LANCZOS)


def save(root: Path, path: str, image: Image.Image, image_format: str, quality: int = 90) -> Path:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": quality} if image_format in ("JPEG", "WEBP") else {}
    image.save(target, image_format, **options)
    return target


def make_pictures(root: Path) -> Path:
    for path, seed, size, image_format in PICTURES:
        save(root, path, scene(seed, size), image_format, quality=70 if "small" in path else 92)
    os.link(root / "alpha/ana/orig.jpg", root / "alpha/ana/orig_link.jpg")  # one file, two names
    (root / "alpha/ana/broken.jpg").write_bytes(b"not a picture at all")
    (root / "alpha/ana/clip.mp4").write_bytes(os.urandom(4096))
    return root


def best_first(root: Path, paths: list[str]) -> list[str]:
    """The contract's order: largest pixel count, then largest size, then path."""
    dims = {path: size for path, _scene, size, _format in PICTURES}

    def key(path: str) -> tuple[int, int, list[int | str]]:
        width, height = dims[path]
        return (-width * height, -os.path.getsize(root / path), natural_key(path))

    return sorted(paths, key=key)


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    return make_pictures(tmp_path / "pictures")


async def similar_scan(client: Client) -> list[dict[str, Any]]:
    events = await run_scan(client, "similar")
    assert events[-1]["type"] == "scan.finished", events[-1]
    await client.app[keys.SCAN].wait()  # the results file is written after scan.finished
    return events


async def get_similar(client: Client, query: str = "", status: int = 200) -> dict[str, Any]:
    response = await client.get("/api/similar" + query)
    body: dict[str, Any] = await response.json()
    assert response.status == status, body
    return body


async def post(client: Client, url: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = await client.post(url, json=body)
    answer: dict[str, Any] = await response.json()
    assert response.status == status, answer
    return answer


def group_of(body: dict[str, Any], path: str) -> dict[str, Any]:
    return next(group for group in body["groups"] if path in [file["path"] for file in group["files"]])


# -- the scan and its groups -----------------------------------------------------------------


async def test_a_similar_scan_finds_the_copies_best_first(pictures: Path, make_client: ClientFactory) -> None:
    client = await make_client(models_dir=pictures)
    events = await similar_scan(client)
    body = await get_similar(client)
    assert body["threshold"] == body["default_threshold"] == phash.DEFAULT_THRESHOLD
    assert body["max_threshold"] == index.MAX_THRESHOLD
    assert body["total_groups"] == len(body["groups"]) == 2
    assert [[f["path"] for f in group["files"]] for group in body["groups"]] == [
        best_first(pictures, SCENE_1),  # the most wasted bytes first
        best_first(pictures, SCENE_3),
    ]
    for group in body["groups"]:
        files = group["files"]
        assert files[0]["distance"] == 0
        assert group["max_distance"] == max(f["distance"] for f in files) <= body["threshold"]
        assert group["wasted"] == sum(f["size"] for f in files[1:])
        for file in files:
            info = os.stat(pictures / file["path"])
            site, model, _name = file["path"].split("/")
            assert (file["site"], file["model"], file["size"]) == (site, model, info.st_size)
            assert file["mtime"] == pytest.approx(info.st_mtime_ns / 1e9)
            assert file["distance"] == phash.distance(int(files[0]["phash"], 16), int(file["phash"], 16))
            expected = next((size, fmt) for path, _s, size, fmt in PICTURES if path == file["path"])
            assert ((file["width"], file["height"]), file["format"]) == expected
    assert body["total_wasted"] == sum(group["wasted"] for group in body["groups"])
    stats = body["stats"]
    assert stats["images"] == IMAGES  # the hard link is the same file
    assert (stats["hashed"], stats["cache_hits"], stats["not_images"]) == (IMAGES, 0, 1)
    assert stats["cache_hit_rate"] == 0.0
    finished = events[-1]
    assert finished["kind"] == "similar" and finished["groups"] == 2
    assert finished["total_wasted"] == body["total_wasted"] and finished["stats"] == stats
    assert (await get_similar(client, "?offset=1&limit=1"))["groups"] == body["groups"][1:]
    # the duplicate results are another scan's: none yet
    assert (await client.get("/api/duplicates")).status == 404


async def test_progress_and_events_name_the_kind(pictures: Path, make_client: ClientFactory) -> None:
    client = await make_client(models_dir=pictures)
    client.app[keys.SCAN].progress_interval_s = 0.0
    events = await similar_scan(client)
    assert events[0]["type"] == "scan.started" and events[0]["kind"] == "similar"
    assert {event["kind"] for event in events} == {"similar"}
    progress = [event for event in events if event["type"] == "scan.progress"]
    working = [p for p in progress if p["phase"] == "similar"]
    assert working and all(p["total"] == IMAGES and p["checked"] <= IMAGES for p in working)
    assert "hashing" not in {p["phase"] for p in progress}
    last = progress[-1]
    assert (last["phase"], last["checked"], last["percent"]) == ("done", IMAGES, 100.0)
    images_bytes = sum(os.path.getsize(pictures / path) for path, *_rest in PICTURES)
    assert last["bytes_total"] == last["bytes_done"] == images_bytes + len(b"not a picture at all")
    assert last["files_found"] == IMAGES + 1  # and the video
    polled = await (await client.get("/api/scan_progress")).json()
    assert polled["kind"] == "similar" and polled["phase"] == "done"
    # an exact scan says so too, and answers with its kind
    response = await client.post("/api/scan")
    assert (await response.json())["kind"] == "exact"
    await client.app[keys.SCAN].wait()
    assert (await (await client.get("/api/scan_progress")).json())["kind"] == "exact"


async def test_the_threshold_decides_the_groups(tmp_path: Path, make_client: ClientFactory) -> None:
    client = await make_client(models_dir=make_pictures(tmp_path / "pictures"))
    assert (await get_similar(client, status=404))["error"] == "no_similar_scan"
    # known hashes: b is 1 bit from a, c 3 bits from a, d far from all
    hashes = {"s/m/a.jpg": 0, "s/m/b.jpg": 0b1, "s/m/c.jpg": 0b111, "s/x/d.jpg": (1 << 64) - 1}
    sizes = {"s/m/a.jpg": 100, "s/m/b.jpg": 300, "s/m/c.jpg": 200, "s/x/d.jpg": 50}
    records = [
        ImageRecord(path, sizes[path], 1, i, value, 10, 10, "PNG") for i, (path, value) in enumerate(hashes.items())
    ]
    client.app[keys.SCAN].similar.results.replace(SimilarScan("known", 1.0, {"images": 4}, records))

    async def members(threshold: int) -> list[list[tuple[str, int]]]:
        body = await get_similar(client, f"?threshold={threshold}")
        assert body["threshold"] == threshold and body["total_groups"] == len(body["groups"])
        return [[(f["path"], f["distance"]) for f in g["files"]] for g in body["groups"]]

    assert await members(0) == []
    assert await members(1) == [[("s/m/b.jpg", 0), ("s/m/a.jpg", 1)]]  # same pixels: the larger file first
    assert await members(3) == [[("s/m/b.jpg", 0), ("s/m/c.jpg", 2), ("s/m/a.jpg", 1)]]
    assert await members(index.MAX_THRESHOLD) == await members(3)
    one = (await get_similar(client, "?threshold=1"))["groups"][0]
    three = (await get_similar(client, "?threshold=3"))["groups"][0]
    assert one["id"] != three["id"]  # another member set, another id
    two = (await get_similar(client, "?threshold=2"))["groups"][0]  # c is 2 bits from b: all three again
    assert two["id"] == three["id"]  # the same set, the same id
    for bad in ("-1", str(index.MAX_THRESHOLD + 1), "ten", "1&threshold=2"):
        assert (await get_similar(client, f"?threshold={bad}", status=400))["message"]
    assert (await get_similar(client, "?thresh=3", status=400))["error"] == "unknown_parameter"
    assert (await get_similar(client, "?limit=0", status=400))["message"]


async def test_threshold_zero_keeps_only_identical_hashes(pictures: Path, make_client: ClientFactory) -> None:
    client = await make_client(models_dir=pictures)
    await similar_scan(client)
    default = await get_similar(client)
    strict = await get_similar(client, "?threshold=0")
    assert strict["total_groups"] <= default["total_groups"]
    for group in strict["groups"]:
        assert group["max_distance"] == 0
        paths = {f["path"] for f in group["files"]}
        assert paths <= {f["path"] for f in group_of(default, group["files"][0]["path"])["files"]}
        assert len({f["phash"] for f in group["files"]}) == 1


async def test_a_rescan_hashes_nothing_and_a_changed_file_is_hashed_again(
    pictures: Path, make_client: ClientFactory
) -> None:
    client = await make_client(models_dir=pictures)
    await similar_scan(client)
    first = await get_similar(client)
    events = await similar_scan(client)
    stats = events[-1]["stats"]
    assert (stats["hashed"], stats["cache_hits"], stats["cache_hit_rate"]) == (0, IMAGES, 1.0)
    last = [e for e in events if e["type"] == "scan.progress"][-1]
    assert last["cache_hits"] == last["checked"] == last["total"] == IMAGES
    assert (await get_similar(client))["groups"] == first["groups"]

    # a new app on the same cache dir has the results and the cache
    again = await make_client(models_dir=pictures)
    assert (await get_similar(again))["groups"] == first["groups"]
    save(pictures, "alpha/ana/other.jpg", scene(2, (600, 400)), "JPEG", quality=60)
    stats = (await similar_scan(again))[-1]["stats"]
    assert (stats["hashed"], stats["cache_hits"]) == (1, IMAGES - 1)


# -- deletes ---------------------------------------------------------------------------------


async def test_delete_moves_to_the_trash_and_restore_brings_it_back(pictures: Path, make_client: ClientFactory) -> None:
    client = await make_client(models_dir=pictures)
    await similar_scan(client)
    body = await get_similar(client)
    keep, *others = [f["path"] for f in group_of(body, "beta/bob/small.jpg")["files"]]
    gone = "beta/bob/small.jpg"
    info = os.stat(pictures / gone)
    identity = (info.st_size, info.st_mtime_ns, info.st_ino)
    perceptual = client.app[keys.SCAN].perceptual_cache
    assert perceptual.lookup(gone, *identity) is not None
    async with client.ws_connect("/ws") as ws:
        assert (await ws.receive_json())["type"] == "hello"
        result = await post(client, "/api/similar/delete", {"keep": keep, "delete": [gone]})
        changed = await ws.receive_json(timeout=10)
    assert (changed["type"], changed["site"], changed["model"]) == ("library.changed", "beta", "bob")
    assert result["deleted"] == [gone] and result["freed"] == info.st_size
    assert not (pictures / gone).exists()
    after = await get_similar(client)
    assert [f["path"] for f in group_of(after, keep)["files"]] == [p for p in [keep, *others] if p != gone]
    assert len(perceptual) == IMAGES - 1

    restored = await client.post("/api/trash/restore", params={"id": result["items"][0]["id"]})
    assert restored.status == 200
    back = os.stat(pictures / gone)
    assert (back.st_size, back.st_mtime_ns, back.st_ino) == identity
    assert perceptual.lookup(gone, *identity) is None  # forgotten: the next scan looks again


async def test_delete_refuses_and_moves_nothing(pictures: Path, make_client: ClientFactory) -> None:
    client = await make_client(models_dir=pictures)
    assert (await post(client, "/api/similar/delete", {"keep": "a/b/c.jpg", "delete": ["a/b/d.jpg"]}, 404))[
        "error"
    ] == ("no_similar_scan")
    await similar_scan(client)
    keep, copy = "beta/bob/big.webp", "alpha/ana/orig.jpg"

    async def refused(body: dict[str, Any], status: int = 409) -> str:
        answer = await post(client, "/api/similar/delete", body, status)
        assert answer["message"]
        return str(answer["error"])

    assert await refused({"keep": keep, "delete": [keep, copy]}) == "keep_in_delete"
    assert await refused({"keep": keep, "delete": [copy, "alpha/ana/other.jpg"]}) == "not_in_group"
    assert await refused({"keep": keep, "delete": ["alpha/cara/pic.jpg"]}) == "not_in_group"  # the other scene
    assert await refused({"keep": keep, "delete": [copy], "threshold": 99}, 400) == "bad_request"
    assert await refused({"keep": keep, "delete": [copy], "other": 1}, 400) == "bad_request"
    assert await refused({"keep": keep, "delete": []}, 400) == "bad_request"
    os.utime(pictures / copy, ns=(0, 1_000_000_000))  # touched since the scan
    assert await refused({"keep": keep, "delete": [copy]}) == "changed"
    (pictures / keep).unlink()  # the copy kept is gone: nothing may go
    assert await refused({"keep": keep, "delete": ["beta/bob/small.jpg"]}) == "changed"
    assert all((pictures / path).exists() for path in SCENE_1 if path != keep)
    listed = {f["path"] for f in group_of(await get_similar(client), copy)["files"]}
    assert listed == set(SCENE_1)  # nothing changed in the results either


async def test_a_duplicate_delete_leaves_the_similar_groups_too(pictures: Path, make_client: ClientFactory) -> None:
    copy = "gamma/dan/orig.jpg"
    shutil.copy2(pictures / "alpha/ana/orig.jpg", pictures / copy)  # byte for byte
    client = await make_client(models_dir=pictures)
    await similar_scan(client)
    assert copy in {f["path"] for f in group_of(await get_similar(client), copy)["files"]}
    await scan_results(client)
    info = os.stat(pictures / copy)
    identity = (info.st_size, info.st_mtime_ns, info.st_ino)
    perceptual = client.app[keys.SCAN].perceptual_cache
    assert perceptual.lookup(copy, *identity) is not None
    await post(client, "/api/duplicates/delete", {"keep": "alpha/ana/orig.jpg", "delete": [copy]})
    assert {f["path"] for f in group_of(await get_similar(client), "alpha/ana/orig.jpg")["files"]} == set(SCENE_1)
    assert perceptual.lookup(copy, *identity) is None


# -- bulk resolution -------------------------------------------------------------------------


async def test_resolve_previews_then_keeps_one_per_group(pictures: Path, make_client: ClientFactory) -> None:
    client = await make_client(models_dir=pictures)
    assert (await post(client, "/api/similar/resolve", {"rule": "largest_dimensions", "groups": "all"}, 404))[
        "error"
    ] == "no_similar_scan"
    await similar_scan(client)
    body = await get_similar(client)
    scene_1, scene_3 = (best_first(pictures, paths) for paths in (SCENE_1, SCENE_3))
    preview = await post(
        client, "/api/similar/resolve", {"rule": "largest_dimensions", "groups": "all", "dry_run": True}
    )
    assert [(p["keep"], p["delete"]) for p in preview["plan"]] == [(scene_1[0], scene_1[1:]), (scene_3[0], scene_3[1:])]
    assert preview["files"] == 4 and preview["groups"] == 2 and preview["skipped"] == []
    assert preview["bytes"] == body["total_wasted"]
    assert all((pictures / path).exists() for path in SCENE_1 + SCENE_3)  # a preview moves nothing

    site_gamma = {"rule": "in_site", "site": "gamma", "groups": "all", "dry_run": True}
    preview = await post(client, "/api/similar/resolve", site_gamma)
    assert [p["keep"] for p in preview["plan"]] == ["gamma/dan/pic_large.png"]
    assert preview["skipped"] == [{"id": body["groups"][0]["id"], "reason": "no_copy_in_site"}]
    site_alpha = {"rule": "in_site", "site": "alpha", "groups": [body["groups"][1]["id"], "nope"], "dry_run": True}
    preview = await post(client, "/api/similar/resolve", site_alpha)
    assert [(p["keep"], p["delete"]) for p in preview["plan"]] == [("alpha/cara/pic.jpg", ["gamma/dan/pic_large.png"])]
    assert preview["skipped"] == [{"id": "nope", "reason": "unknown_group"}]
    for bad in ({"rule": "in_site", "groups": "all"}, {"rule": "oldest", "groups": "all"},
                {"rule": "largest_dimensions", "groups": [], "dry_run": True},
                {"rule": "largest_dimensions", "groups": "all", "threshold": -1}):  # fmt: skip
        assert (await post(client, "/api/similar/resolve", bad, 400))["message"]

    # for real: the second group changed since the scan, so it is left alone
    os.utime(pictures / "alpha/cara/pic.jpg", ns=(0, 2_000_000_000))
    result = await post(client, "/api/similar/resolve", {"rule": "largest_dimensions", "groups": "all"})
    assert sorted(result["deleted"]) == sorted(scene_1[1:])
    assert result["changed"] == [{"id": body["groups"][1]["id"], "reason": "changed"}]
    assert result["bytes"] == body["groups"][0]["wasted"] and len(result["items"]) == 3
    assert [path for path in SCENE_1 if (pictures / path).exists()] == [scene_1[0]]
    after = await get_similar(client)
    assert [[f["path"] for f in g["files"]] for g in after["groups"]] == [scene_3]
    # every chosen group changed: nothing moves
    everything = await post(client, "/api/similar/resolve", {"rule": "largest_dimensions", "groups": "all"}, 409)
    assert everything["error"] == "changed"
    assert all((pictures / path).exists() for path in SCENE_3)


# -- one scan at a time ----------------------------------------------------------------------


async def test_one_scan_at_a_time_whatever_the_kind(pictures: Path, make_client: ClientFactory) -> None:
    client = await make_client(models_dir=pictures)
    bad = await client.post("/api/scan?kind=fuzzy")
    assert bad.status == 400 and (await bad.json())["message"]
    assert (await client.post("/api/scan?kind=similar&x=1")).status == 400
    assert (await client.post("/api/scan?kind=similar")).status == 202
    for query in ("", "?kind=exact", "?kind=similar"):
        refused = await client.post("/api/scan" + query)
        assert refused.status == 409 and (await refused.json())["error"] == "scan_running"
    resolving = await post(client, "/api/similar/resolve", {"rule": "largest_dimensions", "groups": "all"}, 409)
    assert resolving["error"] == "scan_running"
    await client.app[keys.SCAN].wait()
    assert (await get_similar(client))["total_groups"] == 2


async def test_cancel_a_similar_scan(pictures: Path, make_client: ClientFactory) -> None:
    client = await make_client(models_dir=pictures)
    async with client.ws_connect("/ws") as ws:
        assert (await ws.receive_json())["type"] == "hello"
        assert (await client.post("/api/scan?kind=similar")).status == 202
        assert (await client.post("/api/scan/cancel")).status == 200
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["type"] not in TERMINAL:
            seen.append(await ws.receive_json(timeout=30))
    assert seen[-1] == {**seen[-1], "type": "scan.cancelled", "kind": "similar"}
    await client.app[keys.SCAN].wait()
    progress = await (await client.get("/api/scan_progress")).json()
    assert (progress["phase"], progress["kind"], progress["running"]) == ("cancelled", "similar", False)
    assert (await get_similar(client, status=404))["error"] == "no_similar_scan"  # a cancelled scan leaves none
    await similar_scan(client)  # and the next one runs


async def test_cancel_between_batches_keeps_what_the_cache_learnt(tmp_path: Path, make_client: ClientFactory) -> None:
    root = tmp_path / "many"
    for i in range(24):
        save(root, f"s/m{i % 3}/p{i}.png", scene(100 + i, (64, 48)), "PNG")
    client = await make_client(models_dir=root)
    service = client.app[keys.SCAN]
    service.batch_files = 1  # one image per batch: the cancel lands between batches
    service.progress_interval_s = 0.0
    hashed_when_cancelled: list[int] = []

    def on_progress(event: ScanProgress) -> None:
        if event.progress["phase"] == "similar" and event.progress["checked"] and not hashed_when_cancelled:
            hashed_when_cancelled.append(event.progress["checked"])
            service.cancel()

    client.app[keys.EVENTS].subscribe(on_progress, ScanProgress)
    events = await run_scan(client, "similar")
    await service.wait()
    last = [e for e in events if e["type"] == "scan.progress"][-1]
    assert events[-1]["type"] == "scan.cancelled" and last["phase"] == "cancelled"
    assert hashed_when_cancelled[0] <= last["checked"] < 24  # the batches in flight end, no new ones start
    assert PerceptualCache(service.perceptual_cache.path.parent).load() == last["checked"]  # saved on the way out


# -- several instances -----------------------------------------------------------------------


@pytest.mark.redis
async def test_an_exact_scan_on_one_instance_blocks_a_similar_scan_on_the_other(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    require_redis()
    root = make_pictures(tmp_path / "shared")
    for i in range(300):  # same-size pairs: an exact scan long enough to overlap
        data = os.urandom(1000 + i)
        for copy in ("a", "b"):
            (root / "zeta" / f"m{i % 7}").mkdir(parents=True, exist_ok=True)
            (root / "zeta" / f"m{i % 7}" / f"{copy}{i}.mp4").write_bytes(data)
    first = await make_client(models_dir=root, redis_url=SHARED_URL)
    second = await make_client(models_dir=root, redis_url=SHARED_URL)
    await eventually(lambda: first.app[keys.REDIS_LINK].up and second.app[keys.REDIS_LINK].up, within=15)
    first.app[keys.SCAN].batch_files = 2
    async with second.ws_connect("/ws") as ws:
        await ws.receive_json(timeout=10)
        assert (await first.post("/api/scan")).status == 202
        refused = await second.post("/api/scan?kind=similar")
        assert refused.status == 409 and (await refused.json())["error"] == "scan_running"
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["type"] not in TERMINAL:
            seen.append(await ws.receive_json(timeout=30))  # the first instance's, relayed
    assert {event["kind"] for event in seen} == {"exact"}
    assert seen[-1]["type"] == "scan.finished"
    await first.app[keys.SCAN].wait()

    # the lock is free: the other instance scans for similar images; both serve its results
    assert (await second.post("/api/scan?kind=similar")).status == 202
    await second.app[keys.SCAN].wait()
    on_second = await get_similar(second)
    on_first = await get_similar(first)  # read from the shared cache dir
    assert on_first == on_second and on_first["total_groups"] == 2


# -- the results file ------------------------------------------------------------------------


async def test_results_of_another_format_or_hash_are_ignored(tmp_path: Path) -> None:
    results = SimilarResults(tmp_path)
    record = ImageRecord("s/m/a.jpg", 10, 20, 30, (1 << 64) - 1, 4, 3, "JPEG")
    results.replace(SimilarScan("scan", 1.5, {"images": 1}, [record]))
    await results.save()
    again = SimilarResults(tmp_path)
    again.load()
    assert again.require().images == [record]  # the full 64 bits survive the file
    document = orjson.loads(results.file.path.read_bytes())
    for foreign in ({"version": 0}, {"hash": "another-hash"}, {"images": [["s/m/a.jpg", "ten"]]}):
        results.file.path.write_bytes(orjson.dumps({**document, **foreign}))
        stale = SimilarResults(tmp_path)
        stale.load()
        assert stale.scan is None  # GET /api/similar: 404 until the next scan
    results.file.path.write_bytes(b"{not json")
    unreadable = SimilarResults(tmp_path)
    unreadable.load()
    assert unreadable.scan is None
