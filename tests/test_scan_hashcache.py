"""The persistent hash cache: validation by size/mtime/inode, and kill-safety of its writes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from server.scan.hashcache import FILE_NAME, FORMAT_VERSION, HashCache
from server.scan.hashing import HASH_NAME

ROOT = Path(__file__).resolve().parent.parent


def test_entries_are_valid_only_while_size_mtime_and_inode_match(tmp_path: Path) -> None:
    cache = HashCache(tmp_path)
    cache.store("s/m/a.jpg", 100, 5, 7, "p" * 32, None)
    cache.store("s/m/a.jpg", 100, 5, 7, None, "f" * 64)  # adds the full hash, keeps the partial
    entry = cache.lookup("s/m/a.jpg", 100, 5, 7)
    assert entry is not None and entry.partial == "p" * 32 and entry.full == "f" * 64
    assert cache.lookup("s/m/a.jpg", 101, 5, 7) is None
    assert cache.lookup("s/m/a.jpg", 100, 6, 7) is None
    assert cache.lookup("s/m/a.jpg", 100, 5, 8) is None
    cache.store("s/m/a.jpg", 101, 5, 7, None, "g" * 64)  # the file changed: the old hashes go
    entry = cache.lookup("s/m/a.jpg", 101, 5, 7)
    assert entry is not None and entry.partial is None
    cache.forget(["s/m/a.jpg"])
    assert len(cache) == 0


async def test_save_and_load_round_trip(tmp_path: Path) -> None:
    cache = HashCache(tmp_path)
    for i in range(100):
        cache.store(f"s/m/{i}.jpg", i, i * 2, i * 3, f"{i:032x}", f"{i:064x}" if i % 2 else None)
    assert cache.dirty
    await cache.save()
    assert not cache.dirty
    loaded = HashCache(tmp_path)
    assert loaded.load() == 100
    assert loaded.lookup("s/m/7.jpg", 7, 14, 21) == cache.lookup("s/m/7.jpg", 7, 14, 21)
    cache.clear()
    assert not (tmp_path / FILE_NAME).exists()
    assert HashCache(tmp_path).load() == 0


async def test_interrupted_write_leaves_a_loadable_cache(tmp_path: Path) -> None:
    cache = HashCache(tmp_path)
    cache.store("s/m/a.jpg", 1, 2, 3, None, "f" * 64)
    await cache.save()
    good = (tmp_path / FILE_NAME).read_bytes()
    # A write killed before its rename leaves a truncated temp file beside the real one.
    stray = tmp_path / f".{FILE_NAME}.deadbeef.tmp"
    stray.write_bytes(good[: len(good) // 2])
    loaded = HashCache(tmp_path)
    assert loaded.load() == 1
    assert not stray.exists()  # cleaned up on load
    # A cache file that is garbage (a disk error, a foreign file) loads as empty, not a crash.
    (tmp_path / FILE_NAME).write_bytes(good[:-7])
    assert HashCache(tmp_path).load() == 0
    (tmp_path / FILE_NAME).write_bytes(b'{"version": 99, "entries": {}}')
    assert HashCache(tmp_path).load() == 0


_WRITER = """
import asyncio
import sys
from pathlib import Path
from server.scan.hashcache import HashCache
cache = HashCache(Path(sys.argv[1]))
rounds = 0
while True:
    for i in range(20000):
        cache.store(f"site/model/file_{i:06d}.jpg", i + 1, rounds, i, f"{rounds:032x}", f"{rounds:064x}")
    asyncio.run(cache.save())
    rounds += 1
    if rounds == 1:
        print("saved", flush=True)
"""


def test_sigkill_during_writes_leaves_a_loadable_cache(tmp_path: Path) -> None:
    for attempt in range(5):
        process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "saved"
        time.sleep(0.05 * attempt)  # land the kill at different points of a write
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        cache = HashCache(tmp_path)
        assert cache.load() == 20000
        saved_round = entry_round(cache)
        entry = cache.lookup("site/model/file_000005.jpg", 6, saved_round, 5)
        assert entry is not None and entry.full == f"{saved_round:064x}"
        assert not list(tmp_path.glob(f".{FILE_NAME}.*.tmp"))


def entry_round(cache: HashCache) -> int:
    """The write round a loaded cache comes from (every entry of one save shares it)."""
    rounds = {entry.mtime_ns for entry in cache._entries.values()}
    assert len(rounds) == 1, "a loaded cache mixes two saves"
    return rounds.pop()


async def test_a_cache_of_another_format_or_hash_is_discarded_whole(tmp_path: Path) -> None:
    # Version 1 held BLAKE3 hashes: mixing them with XXH3-128 ones would split true duplicates.
    path = tmp_path / FILE_NAME
    path.write_bytes(b'{"version": 1, "entries": {"s/m/a.jpg": [1, 2, 3, null, "' + b"f" * 64 + b'"]}}')
    cache = HashCache(tmp_path)
    assert cache.load() == 0
    assert cache.lookup("s/m/a.jpg", 1, 2, 3) is None
    path.write_bytes(b'{"version": 2, "hash": "blake3", "entries": {"s/m/a.jpg": [1, 2, 3, null, "ab"]}}')
    assert HashCache(tmp_path).load() == 0
    # What it writes names its format and hash, and loads back.
    cache.store("s/m/a.jpg", 1, 2, 3, None, "e" * 32)
    await cache.save()
    document = orjson.loads(path.read_bytes())
    assert (document["version"], document["hash"]) == (FORMAT_VERSION, HASH_NAME)
    assert HashCache(tmp_path).load() == 1
