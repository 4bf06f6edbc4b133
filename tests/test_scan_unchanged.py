"""A rescan of an unchanged library carries the last results over (`stats.unchanged`); after a
change the hash cache would notice (a file rewritten, touched, added, removed, renamed, linked,
restored from the trash) only the same-size groups with a changed file are settled again, and
the results equal a fresh scan's; a cleared cache, a restart or a file that could not be read
leave nothing to carry over."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.scan import hashing
from server.scan.results import LastWalk, WalkResult, summarize_parts, summarize_walk, walk_changes

from .conftest import ClientFactory
from .scan_support import run_scan, scan_results

A = b"a" * 70_000  # above hashing.SMALL_FILE: head+tail hash, then a full one
B = b"b" * 5_000


def _tree(root: Path) -> Path:
    for relative, data in {
        "site/one/a1.jpg": A,
        "site/one/b1.png": B,
        "site/two/a2.jpg": A,
        "site/two/b2.png": B,
        "site/two/lone.mp4": b"x" * 123,
        "other/three/a3.jpg": A,
    }.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _groups(document: dict[str, Any]) -> list[list[str]]:
    return sorted(sorted(group["files"]) for group in document["groups"])


async def test_an_unchanged_rescan_carries_the_results_over(tmp_path: Path, make_client: ClientFactory) -> None:
    root = _tree(tmp_path / "lib")
    client = await make_client(models_dir=root)
    first = await scan_results(client)
    assert first["stats"]["unchanged"] is False
    assert _groups(first) == [
        ["other/three/a3.jpg", "site/one/a1.jpg", "site/two/a2.jpg"],
        ["site/one/b1.png", "site/two/b2.png"],
    ]

    events = await run_scan(client)
    second = await (await client.get("/api/duplicates")).json()
    stats = second["stats"]
    assert stats["unchanged"] is True
    assert second["scan_id"] != first["scan_id"] and second["scan_id"] == events[-1]["scan_id"]
    assert second["groups"] == first["groups"] and second["total_wasted"] == first["total_wasted"]
    # the figures a rescan through the hash cache gives: every hash known, none read
    assert stats["hashed_bytes"] == 0 and stats["cache_hit_rate"] == 1.0
    assert stats["hash_cache_hits"] == stats["hashes"] == first["stats"]["hashes"]
    assert stats["cache_hits"] == stats["files_compared"] == first["stats"]["files_compared"] == 5
    assert (stats["files"], stats["bytes"]) == (first["stats"]["files"], first["stats"]["bytes"])
    # the progress and the finished event tell the same
    assert events[-1]["stats"] == stats
    last_progress = [e for e in events if e["type"] == "scan.progress"][-1]
    assert last_progress["checked"] == last_progress["total"] == 5
    assert last_progress["phase"] == "done"


@pytest.mark.parametrize("change", ["rewrite", "touch", "add", "remove"])
async def test_any_change_is_found(tmp_path: Path, make_client: ClientFactory, change: str) -> None:
    root = _tree(tmp_path / "lib")
    client = await make_client(models_dir=root)
    await scan_results(client)
    await scan_results(client)  # unchanged: carried over
    a1 = root / "site/one/a1.jpg"
    if change == "rewrite":  # same size, same name, other bytes (the mtime moves on)
        a1.write_bytes(b"c" * len(A))
        expected = [["other/three/a3.jpg", "site/two/a2.jpg"], ["site/one/b1.png", "site/two/b2.png"]]
    elif change == "touch":  # only the mtime
        info = a1.stat()
        os.utime(a1, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
        expected = [
            ["other/three/a3.jpg", "site/one/a1.jpg", "site/two/a2.jpg"],
            ["site/one/b1.png", "site/two/b2.png"],
        ]
    elif change == "add":
        (root / "site/two/lone-copy.mp4").write_bytes(b"x" * 123)
        expected = [
            ["other/three/a3.jpg", "site/one/a1.jpg", "site/two/a2.jpg"],
            ["site/one/b1.png", "site/two/b2.png"],
            ["site/two/lone-copy.mp4", "site/two/lone.mp4"],
        ]
    else:
        (root / "site/two/b2.png").unlink()
        expected = [["other/three/a3.jpg", "site/one/a1.jpg", "site/two/a2.jpg"]]
    after = await scan_results(client)
    assert after["stats"]["unchanged"] is False
    assert _groups(after) == expected


async def test_a_copy_deleted_then_restored_is_found_again(tmp_path: Path, make_client: ClientFactory) -> None:
    root = _tree(tmp_path / "lib")
    client = await make_client(models_dir=root)
    first = await scan_results(client)
    response = await client.post(
        "/api/duplicates/delete", json={"keep": "site/one/b1.png", "delete": ["site/two/b2.png"]}
    )
    assert response.status == 200, await response.text()
    item = (await response.json())["items"][0]
    after_delete = await scan_results(client)
    assert ["site/one/b1.png", "site/two/b2.png"] not in _groups(after_delete)
    restored = await client.post(f"/api/trash/restore?id={item['id']}")
    assert restored.status == 200, await restored.text()
    # the walk is now the very walk of the first scan again: its results, not the last ones
    again = await scan_results(client)
    assert _groups(again) == _groups(first)


async def test_clearing_the_cache_makes_a_full_rescan(tmp_path: Path, make_client: ClientFactory) -> None:
    root = _tree(tmp_path / "lib")
    client = await make_client(models_dir=root)
    first = await scan_results(client)
    counters = client.app[keys.SCAN].counters
    walked = counters.walked_parts
    assert (await client.post("/api/clear_cache")).status == 200
    after = await scan_results(client)
    assert counters.walked_parts == 2 * walked  # walked again: no part kept from before the clear
    assert after["stats"]["unchanged"] is False
    assert after["stats"]["cache_hit_rate"] == 0.0 and after["stats"]["hashed_bytes"] == first["stats"]["hashed_bytes"]
    assert after["groups"] == first["groups"]


async def test_a_file_that_could_not_be_read_is_tried_again(
    tmp_path: Path, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests run as root (no permission denies it a file): the workers run in threads here
    and one scan is told a file could not be read, as a worker tells it."""
    root = _tree(tmp_path / "lib")
    client = await make_client(models_dir=root)
    pool = client.app[keys.SCAN].pool
    real_executor = pool.executor
    pool.executor = ThreadPoolExecutor(2)
    real_hash_groups = hashing.hash_groups
    failing = {"site/two/b2.png"}

    def hash_groups(root: str, groups: Any) -> Any:
        outcomes, work = real_hash_groups(root, groups)
        for (_size, members), group_outcomes in zip(groups, outcomes, strict=True):
            for index, (path, _partial, _full) in enumerate(members):
                if path in failing:
                    group_outcomes[index] = (None, None)
        return outcomes, work

    monkeypatch.setattr(hashing, "hash_groups", hash_groups)
    try:
        first = await scan_results(client)
        assert _groups(first) == [["other/three/a3.jpg", "site/one/a1.jpg", "site/two/a2.jpg"]]
        failing.clear()  # readable again (a permission given back: the mtime does not move)
        second = await scan_results(client)
        assert second["stats"]["unchanged"] is False
        assert ["site/one/b1.png", "site/two/b2.png"] in _groups(second)
        third = await scan_results(client)
        assert third["stats"]["unchanged"] is True and third["groups"] == second["groups"]
    finally:
        pool.executor.shutdown()
        pool.executor = real_executor


async def test_a_restart_rescans_through_the_hash_cache(tmp_path: Path, make_client: ClientFactory) -> None:
    root = _tree(tmp_path / "lib")
    client = await make_client(models_dir=root)
    first = await scan_results(client)
    await client.app[keys.SCAN].wait()  # the cache and results are written after scan.finished
    again = await make_client(models_dir=root)
    second = await scan_results(again)
    assert second["stats"]["unchanged"] is False  # the last walk is kept in memory only
    assert second["stats"]["cache_hit_rate"] == 1.0 and second["stats"]["hashed_bytes"] == 0
    assert second["groups"] == first["groups"]


async def _fresh_scan(make_client: ClientFactory, root: Path, tmp_path: Path) -> dict[str, Any]:
    """A scan by a new app with a new cache dir: nothing to carry over, nothing cached."""
    client = await make_client(models_dir=root, cache_dir=tmp_path / f"fresh-{os.urandom(4).hex()}")
    return await scan_results(client)


async def test_a_rescan_after_changes_equals_a_fresh_scan(tmp_path: Path, make_client: ClientFactory) -> None:
    root = _tree(tmp_path / "lib")
    (root / "site/one/c1.gif").write_bytes(b"c" * 4000)
    (root / "site/two/c2.gif").write_bytes(b"d" * 4000)  # same size, other bytes
    for name in ("d1.webp", "d2.webp", "d3.webp"):
        path = root / "other" / name[:2] / name
        path.parent.mkdir(parents=True)
        path.write_bytes(b"D" * 9000)
    client = await make_client(models_dir=root)
    await scan_results(client)
    looked_up: list[str] = []
    cache = client.app[keys.SCAN].cache
    members = cache.members

    def spy(files: Any) -> Any:
        files = list(files)
        looked_up.extend(info.path for info in files)
        return members(files)

    cache.members = spy  # type: ignore[method-assign]

    def touch(relative: str) -> None:
        info = (root / relative).stat()
        os.utime(root / relative, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))

    changes: list[tuple[str, Callable[[], object], set[int]]] = [
        ("touch a small copy", lambda: touch("site/one/b1.png"), {5_000}),
        ("rewrite a large copy", lambda: (root / "site/two/a2.jpg").write_bytes(b"z" * len(A)), {len(A)}),
        ("remove a copy", lambda: (root / "other/d3/d3.webp").unlink(), {9000}),
        ("add a copy", lambda: (root / "site/two/c3.gif").write_bytes(b"c" * 4000), {4000}),
        ("rename a copy", lambda: (root / "site/one/b1.png").rename(root / "site/one/b9.png"), {5_000}),
        ("link a copy", lambda: os.link(root / "other/d1/d1.webp", root / "site/one/d-link.webp"), {9000}),
        ("add a model folder", lambda: _write(root / "aaa/new/c4.gif", b"c" * 4000), {4000}),
        ("touch a lone file", lambda: touch("site/two/lone.mp4"), set()),
    ]
    for what, change, sizes in changes:
        change()
        looked_up.clear()
        rescan = await scan_results(client)
        fresh = await _fresh_scan(make_client, root, tmp_path)
        assert _groups(rescan) == _groups(fresh), what
        assert rescan["total_wasted"] == fresh["total_wasted"], what
        for figure in ("files", "bytes", "files_compared", "hashes"):
            assert rescan["stats"][figure] == fresh["stats"][figure], (what, figure)
        assert rescan["stats"]["unchanged"] is False, what
        # only the groups of the sizes with a changed file were settled again
        assert {(root / path).stat().st_size for path in looked_up} == sizes, what
        assert [g["mtimes"] for g in rescan["groups"]] == [g["mtimes"] for g in fresh["groups"]], what


async def test_a_file_dated_after_2262_is_scanned_and_its_change_found(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    root = _tree(tmp_path / "lib")
    far = 2**63 + 10**18  # ns since 1970: more than a signed 64-bit count holds (ext4 stores it)
    os.utime(root / "site/one/b1.png", ns=(far, far))
    client = await make_client(models_dir=root)
    first = await scan_results(client)
    assert ["site/one/b1.png", "site/two/b2.png"] in _groups(first)
    (root / "site/one/b1.png").write_bytes(b"c" * len(B))  # other bytes, same size
    os.utime(root / "site/one/b1.png", ns=(far + 10**9, far + 10**9))
    rescan = await scan_results(client)
    assert _groups(rescan) == _groups(await _fresh_scan(make_client, root, tmp_path))
    assert ["site/one/b1.png", "site/two/b2.png"] not in _groups(rescan)


async def test_a_library_that_was_empty_is_rescanned_when_a_folder_comes(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    client = await make_client(models_dir=root)
    assert (await scan_results(client))["groups"] == []
    _tree(root)
    assert _groups(await scan_results(client)) == _groups(await _fresh_scan(make_client, root, tmp_path))


def _fresh_summary(parts: list[hashing.PackedWalk]) -> WalkResult:
    """The walk summarized from scratch, the same from its parts' columns as from its entries."""
    fresh = summarize_walk(hashing.unpack(parts))
    from_columns = summarize_parts(parts)
    assert (from_columns.files, from_columns.bytes, from_columns.groups, from_columns.paths) == (
        fresh.files,
        fresh.bytes,
        fresh.groups,
        fresh.paths,
    )
    return fresh


def _last_walk(parts: list[hashing.PackedWalk]) -> LastWalk:
    walk = summarize_walk(hashing.unpack(parts))
    return LastWalk(parts, 0, {"groups": []}, files=walk.files, nbytes=walk.bytes, by_size={})


def test_a_walk_told_as_changes_equals_the_fresh_walk_in_its_changed_sizes(tmp_path: Path) -> None:
    root = _tree(tmp_path / "lib")
    folders = hashing.walk_roots(str(root))  # other/three, site/one, site/two

    def walk(split: int) -> list[hashing.PackedWalk]:
        return [hashing.walk_packed(str(root), folders[i::split]) for i in range(split)]

    last = _last_walk(walk(2))
    assert walk_changes(last, walk(2))[1] == set()
    assert walk_changes(last, walk(3))[1] == set()  # split otherwise: compared whole
    (root / "site/one/b1.png").write_bytes(b"b" * 6_000)  # 5,000 -> 6,000 bytes
    (root / "other/three/new.jpg").write_bytes(b"n" * 10)
    os.link(root / "site/two/a2.jpg", root / "other/three/a-link.jpg")  # one file, two names
    (root / "site/two/lone.mp4").unlink()
    for split in (2, 3):
        parts = walk(split)
        told, changed = walk_changes(last, parts)
        fresh = _fresh_summary(parts)
        assert changed == {5_000, 6_000, 10, 123, len(A)}
        assert (told.files, told.bytes) == (fresh.files, fresh.bytes)
        assert told.groups == [group for group in fresh.groups if group[0] in changed]
        assert told.paths is None and told.gone == ["site/two/lone.mp4"]


def test_a_walk_told_as_changes_makes_only_the_entries_of_changed_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path / "lib")
    made: set[str] = set()
    at = hashing.PackedWalk.at

    def spy(part: hashing.PackedWalk, indexes: Any, names: Any = None) -> list[hashing.WalkEntry]:
        entries = at(part, indexes, names)
        made.update(entry[0] for entry in entries)
        return entries

    def walk() -> list[hashing.PackedWalk]:
        folders = hashing.walk_roots(str(root))
        return [hashing.walk_packed(str(root), folders[i::2]) for i in range(2)]

    def told_as_changes(last: LastWalk, parts: list[hashing.PackedWalk]) -> tuple[WalkResult, set[int]]:
        made.clear()
        monkeypatch.setattr(hashing.PackedWalk, "at", spy)
        monkeypatch.setattr(hashing.PackedWalk, "entries", lambda part: pytest.fail("a part unpacked whole"))
        try:
            return walk_changes(last, parts)
        finally:
            monkeypatch.undo()

    last = _last_walk(walk())
    (root / "site/one/b1.png").write_bytes(b"b" * 6_000)  # the same names: compared by column
    parts = walk()
    told, changed = told_as_changes(last, parts)
    assert changed == {5_000, 6_000}
    assert made == {"site/one/b1.png", "site/two/b2.png"}
    assert told.groups == []  # b2.png is alone at 5,000 bytes now, b1.png alone at 6,000
    fresh = summarize_walk(hashing.unpack(parts))
    assert (told.files, told.bytes) == (fresh.files, fresh.bytes)

    last = _last_walk(parts)
    (root / "aaa/new").mkdir(parents=True)  # a folder first in order: every other one changes part
    (root / "aaa/new/x.mp4").write_bytes(b"y" * 123)
    parts = walk()
    assert all(old.digest != new.digest for old, new in zip(last.parts, parts, strict=True))
    told, changed = told_as_changes(last, parts)
    assert changed == {123}
    assert made == {"aaa/new/x.mp4", "site/two/lone.mp4"}
    assert [sorted(file.path for file in files) for _size, files in told.groups] == [
        ["aaa/new/x.mp4", "site/two/lone.mp4"]
    ]
    fresh = summarize_walk(hashing.unpack(parts))
    assert (told.files, told.bytes) == (fresh.files, fresh.bytes)


def test_walk_changes_equals_a_fresh_walk_over_random_changes(tmp_path: Path) -> None:
    """Random trees and changes (files added, removed, rewritten, touched, renamed, hard- and
    symbolically linked, folders added), walked in a random number of parts: what changed, told as
    changes, is what a fresh walk finds in those sizes, and nothing else changed."""
    rng = random.Random(5)
    root = tmp_path / "lib"
    sizes = [10, 20, 30, 70_000]

    def files() -> list[Path]:
        return sorted(path for path in root.rglob("*.jpg") if path.is_file())

    def add(path: Path) -> None:
        _write(path, bytes([rng.randrange(3)]) * rng.choice(sizes))

    for index in range(24):
        add(root / f"s{index % 3}" / f"m{index % 7}" / f"f{index}.jpg")
    changes: list[Callable[[], object]] = [
        lambda: add(root / f"s{rng.randrange(4)}" / f"m{rng.randrange(9)}" / f"n{rng.randrange(10**6)}.jpg"),
        lambda: rng.choice(files()).unlink(),
        lambda: add(rng.choice(files())),
        lambda: os.utime(rng.choice(files()), ns=(0, rng.randrange(10**18))),
        lambda: (lambda path: path.rename(path.with_name(f"r{rng.randrange(10**6)}.jpg")))(rng.choice(files())),
        lambda: (lambda path: os.link(path, path.with_name(f"l{rng.randrange(10**6)}.jpg")))(rng.choice(files())),
        lambda: (lambda path: os.symlink(path, path.with_name(f"y{rng.randrange(10**6)}.jpg")))(rng.choice(files())),
        lambda: add(root / f"new{rng.randrange(10**6)}" / "m" / "x.jpg"),
    ]

    def walk() -> list[hashing.PackedWalk]:
        folders = hashing.walk_roots(str(root))
        split = rng.randint(1, 4)
        return [hashing.walk_packed(str(root), folders[i::split]) for i in range(split)]

    parts = walk()
    for _ in range(60):
        last = _last_walk(parts)
        for _ in range(rng.randint(1, 3)):
            rng.choice(changes)()
        parts = walk()
        told, changed = walk_changes(last, parts)
        fresh = _fresh_summary(parts)
        before = summarize_walk(hashing.unpack(last.parts))
        assert (told.files, told.bytes) == (fresh.files, fresh.bytes)
        assert told.groups == [group for group in fresh.groups if group[0] in changed]
        assert _groups_but(fresh, changed) == _groups_but(before, changed)
        assert before.paths is not None and fresh.paths is not None
        assert set(told.gone) == before.paths - fresh.paths


def _groups_but(walk: WalkResult, sizes: set[int]) -> dict[int, list[str]]:
    """The walk's groups of other sizes (their files in any order: parts split otherwise)."""
    return {size: sorted(file.path for file in files) for size, files in walk.groups if size not in sizes}
