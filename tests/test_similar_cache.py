"""The perceptual hash cache: validation by size/mtime/inode, remembered non-images, versioned
and kill-safe persistence shared with the duplicate scan's hash cache."""

from __future__ import annotations

import io
import os
from pathlib import Path

import orjson
from PIL import Image

from server.scan.hashcache import FILE_NAME as HASH_CACHE_FILE
from server.similar.cache import FILE_NAME, FORMAT_VERSION, PerceptualCache
from server.similar.phash import HASH_NAME, ImageInfo, hash_image


def info(seed: int) -> ImageInfo:
    return ImageInfo(phash=(seed * 0x9E3779B97F4A7C15) % (1 << 64), width=100 + seed, height=50 + seed, format="JPEG")


def test_entries_are_valid_only_while_size_mtime_and_inode_match(tmp_path: Path) -> None:
    cache = PerceptualCache(tmp_path)
    cache.store("s/m/a.jpg", 100, 5, 7, info(1))
    assert cache.lookup("s/m/a.jpg", 100, 5, 7) == info(1)
    assert cache.entry("s/m/a.jpg", 100, 5, 7) is not None
    for size, mtime_ns, inode in ((101, 5, 7), (100, 6, 7), (100, 5, 8)):
        assert cache.lookup("s/m/a.jpg", size, mtime_ns, inode) is None
        assert cache.entry("s/m/a.jpg", size, mtime_ns, inode) is None
    cache.store("s/m/a.jpg", 101, 5, 7, info(2))  # the file changed: the new hash replaces the old
    assert cache.lookup("s/m/a.jpg", 100, 5, 7) is None
    assert cache.lookup("s/m/a.jpg", 101, 5, 7) == info(2)
    assert len(cache) == 1


def test_a_file_that_is_not_an_image_is_remembered(tmp_path: Path) -> None:
    cache = PerceptualCache(tmp_path)
    cache.store("s/m/broken.jpg", 10, 20, 30, None)
    assert cache.entry("s/m/broken.jpg", 10, 20, 30) is not None
    assert cache.lookup("s/m/broken.jpg", 10, 20, 30) is None
    assert cache.entry("s/m/other.jpg", 10, 20, 30) is None


def test_a_real_file_is_looked_up_by_its_stat(tmp_path: Path) -> None:
    picture = tmp_path / "s" / "m" / "a.png"
    picture.parent.mkdir(parents=True)
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((320, 200)).save(buffer, "PNG")
    picture.write_bytes(buffer.getvalue())
    before = os.stat(picture)
    hashed = hash_image(str(picture))
    assert hashed is not None
    cache = PerceptualCache(tmp_path / "cache")
    cache.store("s/m/a.png", before.st_size, before.st_mtime_ns, before.st_ino, hashed)
    assert cache.lookup("s/m/a.png", before.st_size, before.st_mtime_ns, before.st_ino) == hashed
    picture.write_bytes(buffer.getvalue() + b"\0")  # changed on disk: the entry no longer answers
    after = os.stat(picture)
    assert cache.lookup("s/m/a.png", after.st_size, after.st_mtime_ns, after.st_ino) is None


async def test_save_and_load_round_trip(tmp_path: Path) -> None:
    cache = PerceptualCache(tmp_path)
    for i in range(100):
        cache.store(f"s/m/{i}.jpg", i, i * 2, i * 3, info(i) if i % 3 else None)
    cache.store("s/m/top.jpg", 1, 2, 3, ImageInfo((1 << 64) - 1, 1, 1, "PNG"))  # every bit set survives
    assert cache.dirty
    await cache.save()
    assert not cache.dirty
    loaded = PerceptualCache(tmp_path)
    assert loaded.load() == 101
    for i in range(100):
        assert loaded.entry(f"s/m/{i}.jpg", i, i * 2, i * 3) is not None
        assert loaded.lookup(f"s/m/{i}.jpg", i, i * 2, i * 3) == (info(i) if i % 3 else None)
    assert loaded.lookup("s/m/top.jpg", 1, 2, 3) == ImageInfo((1 << 64) - 1, 1, 1, "PNG")
    cache.clear()
    assert not (tmp_path / FILE_NAME).exists()
    assert PerceptualCache(tmp_path).load() == 0


async def test_save_writes_only_what_changed(tmp_path: Path) -> None:
    cache = PerceptualCache(tmp_path)
    await cache.save()
    assert not cache.path.exists()  # nothing learnt, nothing written
    cache.store("s/m/a.jpg", 1, 2, 3, info(1))
    await cache.save()
    cache.store("s/m/a.jpg", 1, 2, 3, info(1))  # the same again: no change
    assert not cache.dirty
    cache.path.write_bytes(b"sentinel")
    await cache.save()
    assert cache.path.read_bytes() == b"sentinel"
    assert cache.retain({"s/m/a.jpg"}) == 0 and not cache.dirty
    assert cache.retain(set()) == 1 and cache.dirty
    await cache.save()
    assert PerceptualCache(tmp_path).load() == 0


async def test_forget_drops_entries(tmp_path: Path) -> None:
    cache = PerceptualCache(tmp_path)
    cache.store("s/m/a.jpg", 1, 2, 3, info(1))
    cache.store("s/m/b.jpg", 1, 2, 3, None)
    await cache.save()
    cache.forget(["s/m/a.jpg", "s/m/never.jpg"])
    assert cache.dirty and len(cache) == 1
    await cache.save()
    loaded = PerceptualCache(tmp_path)
    assert loaded.load() == 1 and loaded.entry("s/m/b.jpg", 1, 2, 3) is not None


async def test_a_cache_of_another_format_or_hash_is_discarded_whole(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    row = [1, 2, 3, "00000000000000ff", 10, 20, "JPEG"]
    path.write_bytes(orjson.dumps({"version": FORMAT_VERSION + 1, "hash": HASH_NAME, "entries": {"s/m/a.jpg": row}}))
    cache = PerceptualCache(tmp_path)
    assert cache.load() == 0
    assert cache.entry("s/m/a.jpg", 1, 2, 3) is None
    path.write_bytes(orjson.dumps({"version": FORMAT_VERSION, "hash": "dhash64", "entries": {"s/m/a.jpg": row}}))
    assert PerceptualCache(tmp_path).load() == 0
    path.write_bytes(orjson.dumps({"version": FORMAT_VERSION, "hash": HASH_NAME, "entries": {"s/m/a.jpg": row}}))
    loaded = PerceptualCache(tmp_path)
    assert loaded.load() == 1  # the same document with the right names is read
    assert loaded.lookup("s/m/a.jpg", 1, 2, 3) == ImageInfo(0xFF, 10, 20, "JPEG")
    # What it writes names its format and hash.
    cache.store("s/m/b.jpg", 4, 5, 6, info(3))
    await cache.save()
    document = orjson.loads(path.read_bytes())
    assert (document["version"], document["hash"]) == (FORMAT_VERSION, HASH_NAME)


async def test_a_stray_temp_file_or_a_corrupt_cache_is_ignored(tmp_path: Path) -> None:
    cache = PerceptualCache(tmp_path)
    cache.store("s/m/a.jpg", 1, 2, 3, info(1))
    await cache.save()
    good = (tmp_path / FILE_NAME).read_bytes()
    # A write killed before its rename leaves a truncated temp file beside the real one.
    stray = tmp_path / f".{FILE_NAME}.deadbeef.tmp"
    stray.write_bytes(good[: len(good) // 2])
    other_cache_write = tmp_path / f".{HASH_CACHE_FILE}.cafebabe.tmp"  # the hash cache's, not ours
    other_cache_write.write_bytes(b"{")
    loaded = PerceptualCache(tmp_path)
    assert loaded.load() == 1
    assert loaded.lookup("s/m/a.jpg", 1, 2, 3) == info(1)
    assert not stray.exists()
    assert other_cache_write.exists()
    # Garbage on disk loads as empty, not a crash: cut short, not JSON, rows of the wrong shape.
    versioned = {"version": FORMAT_VERSION, "hash": HASH_NAME}
    broken_documents = [
        good[:-7],
        b"\x00\x01binary",
        orjson.dumps({**versioned, "entries": {"a": [1, 2]}}),
        orjson.dumps({**versioned, "entries": {"a": [1, 2, 3, "ff", 1, 1, "JPEG"]}}),  # too few hex digits
        orjson.dumps({**versioned, "entries": {"a": [1, 2, 3, "-fffffffffffffff", 1, 1, "JPEG"]}}),
        orjson.dumps({**versioned, "entries": {"a": [1, 2, 3, "zzzzzzzzzzzzzzzz", 1, 1, "JPEG"]}}),
        orjson.dumps({**versioned, "entries": {"a": [1, 2, 3, "00000000000000ff", 1, 1, 5]}}),
        orjson.dumps({**versioned, "entries": {"a": {"size": 1}}}),
        orjson.dumps({**versioned, "entries": []}),
        orjson.dumps([1, 2, 3]),
    ]
    for document in broken_documents:
        (tmp_path / FILE_NAME).write_bytes(document)
        assert PerceptualCache(tmp_path).load() == 0, document


async def test_an_instance_takes_the_file_another_one_saved(tmp_path: Path) -> None:
    first, second = PerceptualCache(tmp_path), PerceptualCache(tmp_path)
    first.load()
    second.load()
    second.store("s/m/a.jpg", 1, 2, 3, info(1))
    await second.save()
    first.reload_if_changed()
    assert first.lookup("s/m/a.jpg", 1, 2, 3) == info(1)
    first.store("s/m/b.jpg", 1, 2, 3, None)  # unsaved changes are not thrown away by a reload
    second.store("s/m/c.jpg", 1, 2, 3, None)
    await second.save()
    first.reload_if_changed()
    assert first.entry("s/m/b.jpg", 1, 2, 3) is not None and first.entry("s/m/c.jpg", 1, 2, 3) is None
