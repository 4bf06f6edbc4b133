"""A first scan (the hash cache knows nothing) hashes small files sharing a size during the walk:
the same groups and figures as hashing them afterwards, and a later scan never does it (it
would read again files the cache knows)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.scan import hashing
from server.scan.run import ExactScanRun

from .conftest import ClientFactory
from .scan_support import make_library_tree, scan_results


def _tree(root: Path) -> Path:
    """Small files (same-size groups inside one model, across models and sites, a size shared
    by files of different content, hard links across sites) and a large pair."""
    files = {
        "s1/m1/a.jpg": b"A" * 3000,
        "s1/m1/a-copy.jpg": b"A" * 3000,
        "s1/m2/a-again.jpg": b"A" * 3000,
        "s2/m3/b.png": b"B" * 3000,  # same size as a, other bytes
        "s2/m4/c.png": b"C" * 777,
        "s1/m2/c.png": b"C" * 777,  # a pair split across sites
        "s2/m4/lone.gif": b"L" * 999,
        "s1/m1/big.mp4": b"V" * (hashing.SMALL_FILE + 5000),
        "s2/m3/big.mp4": b"V" * (hashing.SMALL_FILE + 5000),
    }
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "s2/m5").mkdir(parents=True)
    os.link(root / "s1/m1/a.jpg", root / "s2/m5/a-link.jpg")  # one file, two names
    return root


def _groups(document: dict[str, Any]) -> list[list[str]]:
    return sorted(sorted(group["files"]) for group in document["groups"])


async def _first_scan(make_client: ClientFactory, root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The results of a first scan of `root` and the hash cache's entries after it."""
    client = await make_client(models_dir=root, cache_dir=root.parent / f"cache-{os.urandom(4).hex()}")
    results = await scan_results(client)
    cache = client.app[keys.SCAN].cache
    return results, {path: cache.lookup(path, *entry[:3]) for path, entry in cache._entries.items()}


@pytest.mark.parametrize("tree", ["small", "make_library"])
async def test_hashing_in_the_walk_finds_what_hashing_afterwards_finds(
    tmp_path: Path, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch, tree: str
) -> None:
    if tree == "small":
        root = _tree(tmp_path / "lib")
    else:
        root, _manifest = make_library_tree(tmp_path, "--sites", "2", "--collections", "6", "--files", "8")
    in_walk, learnt_in_walk = await _first_scan(make_client, root)
    monkeypatch.setattr(ExactScanRun, "_walk_hashes_small", lambda self: False)
    afterwards, learnt_afterwards = await _first_scan(make_client, root)
    assert _groups(in_walk) == _groups(afterwards)
    # the groups the walk's hashes settle are recorded on their own path: the same cache entries
    assert learnt_in_walk == learnt_afterwards and len(learnt_in_walk) > 0
    for figure in ("files", "bytes", "files_compared", "hashes", "cache_hits", "hash_cache_hits", "cache_hit_rate"):
        assert in_walk["stats"][figure] == afterwards["stats"][figure], figure
    assert in_walk["stats"]["cache_hit_rate"] == 0.0
    # a file with two names may be read by two parts of the walk: never fewer bytes
    assert in_walk["stats"]["hashed_bytes"] >= afterwards["stats"]["hashed_bytes"] > 0
    if tree == "small":
        # a.jpg and a-link.jpg are one file: the first path names it
        assert ["s1/m1/a-copy.jpg", "s1/m1/a.jpg", "s1/m2/a-again.jpg"] in _groups(in_walk)
        assert ["s1/m2/c.png", "s2/m4/c.png"] in _groups(in_walk)
        assert ["s1/m1/big.mp4", "s2/m3/big.mp4"] in _groups(in_walk)
        assert not any("b.png" in path or "lone.gif" in path for group in _groups(in_walk) for path in group)


async def test_a_scan_with_a_warm_cache_reads_only_what_changed(tmp_path: Path, make_client: ClientFactory) -> None:
    root = _tree(tmp_path / "lib")
    client = await make_client(models_dir=root)
    first = await scan_results(client)
    assert first["stats"]["hashed_bytes"] > 0
    touched = root / "s1/m1/a-copy.jpg"
    info = touched.stat()
    os.utime(touched, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    second = await scan_results(client)
    assert second["stats"]["unchanged"] is False
    # the walk hashed nothing (the cache is not empty): only the touched file was read
    assert second["stats"]["hashed_bytes"] == info.st_size
    assert _groups(second) == _groups(first)


def test_the_walk_hashes_only_small_files_sharing_a_size_in_its_part(tmp_path: Path) -> None:
    root = _tree(tmp_path / "lib")
    folders = hashing.walk_roots(str(root))
    packed = hashing.walk_packed(str(root), folders, hash_shared_small=True)
    hashes = packed.small_hashes
    assert set(hashes) == {
        "s1/m1/a.jpg",
        "s1/m1/a-copy.jpg",
        "s1/m2/a-again.jpg",
        "s2/m3/b.png",
        "s2/m5/a-link.jpg",
        "s1/m2/c.png",
        "s2/m4/c.png",
    }
    assert hashes["s1/m1/a.jpg"] == hashes["s1/m1/a-copy.jpg"] == hashes["s2/m5/a-link.jpg"] != hashes["s2/m3/b.png"]
    assert packed.work.computed == 6  # the two names of one file: read once
    assert not hashing.walk_packed(str(root), folders).small_hashes
    only_site_2 = [folder for folder in folders if folder.startswith("s2/")]
    assert set(hashing.walk_packed(str(root), only_site_2, hash_shared_small=True).small_hashes) == {
        "s2/m3/b.png",
        "s2/m5/a-link.jpg",
    }


def test_a_cold_page_cache_leaves_the_hashing_to_the_hashing_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read cold one by one in the walk, small files would wait for the disk one at a time; the
    hashing stage asks for a whole group's files at once (WILLNEED) instead."""
    root = _tree(tmp_path / "lib")
    folders = hashing.walk_roots(str(root))
    monkeypatch.setattr(hashing, "_cached", lambda fd, offset: False)  # what RWF_NOWAIT says of a cold file
    packed = hashing.walk_packed(str(root), folders, hash_shared_small=True)
    assert packed.small_hashes == {} and packed.work.bytes_read == 0
    assert packed.count == 10  # the walk itself is whole
