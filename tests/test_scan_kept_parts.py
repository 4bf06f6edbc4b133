"""Rescans keep the folders of the walk in which inotify saw nothing change
(`ExactScanRun._reuse`): an unchanged library is not walked again, a change has only its folder
walked, and folders that watches on them cannot vouch for (a sub-folder, a symbolic link, a
file with a name where no watch sees it) are walked every time. Whatever is kept, the results
are a fresh scan's; a part walked in some folders packs as the whole part walked would."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.scan import hashing
from server.scan.run import ScanCounters

from .conftest import ClientFactory
from .scan_support import scan_results

COPY = b"c" * 5_000


def _library(root: Path) -> Path:
    for site in ("one", "two"):
        for model in ("a", "b", "c"):
            folder = root / site / model
            folder.mkdir(parents=True)
            (folder / "copy.jpg").write_bytes(COPY)
            (folder / f"own-{site}{model}.png").write_bytes(f"{site}{model}".encode() * 100)
    return root


def _counters(client: Any) -> ScanCounters:
    counters: ScanCounters = client.app[keys.SCAN].counters
    return counters


def _groups(document: dict[str, Any]) -> list[list[str]]:
    return sorted(sorted(group["files"]) for group in document["groups"])


async def _fresh(make_client: ClientFactory, root: Path, tmp_path: Path) -> list[list[str]]:
    client = await make_client(models_dir=root, cache_dir=tmp_path / f"fresh-{os.urandom(4).hex()}")
    return _groups(await scan_results(client))


async def test_an_unchanged_rescan_walks_nothing(tmp_path: Path, make_client: ClientFactory) -> None:
    root = _library(tmp_path / "lib")
    client = await make_client(models_dir=root)
    first = await scan_results(client)
    walked = _counters(client).walked_parts
    assert walked >= 1 and _counters(client).kept_parts == 0
    again = await scan_results(client)
    assert _counters(client).walked_parts == walked  # no part walked again
    assert _counters(client).kept_parts == walked
    assert again["stats"]["unchanged"] is True
    assert _groups(again) == _groups(first)


async def test_a_change_has_only_its_part_walked_and_is_found(tmp_path: Path, make_client: ClientFactory) -> None:
    root = _library(tmp_path / "lib")
    client = await make_client(models_dir=root)
    await scan_results(client)
    parts = _counters(client).walked_parts
    assert parts == 2  # six folders on the test pool's two workers

    def touch(path: Path) -> None:
        info = path.stat()
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))

    changes: list[tuple[str, Callable[[], object]]] = [
        ("rewrite a copy in place", lambda: (root / "one/a/copy.jpg").write_bytes(b"x" * len(COPY))),
        ("touch a file", lambda: touch(root / "two/b/copy.jpg")),
        ("add a copy", lambda: (root / "one/c/again.jpg").write_bytes(COPY)),
        ("remove a copy", lambda: (root / "two/c/copy.jpg").unlink()),
        ("rename a file", lambda: (root / "one/b/copy.jpg").rename(root / "one/b/renamed.jpg")),
        ("truncate a file", lambda: os.truncate(root / "two/a/copy.jpg", 10)),
    ]
    for what, change in changes:
        walked, kept = _counters(client).walked_parts, _counters(client).kept_parts
        walked_folders, kept_folders = _counters(client).walked_folders, _counters(client).kept_folders
        change()
        rescan = await scan_results(client)
        assert _counters(client).walked_parts - walked == 1, what  # the changed folder's part only
        assert _counters(client).kept_parts - kept == parts - 1, what
        assert _counters(client).walked_folders - walked_folders == 1, what  # and in it, that folder only
        assert _counters(client).kept_folders - kept_folders == 5, what
        assert _groups(rescan) == await _fresh(make_client, root, tmp_path), what


async def test_a_new_model_folder_is_walked_alone_and_a_removed_one_costs_no_walk(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    """A new folder shifts every later folder of a fresh split into another part; the split of
    the last walk is kept instead (the new folder joins the smallest part), so the other
    folders are still taken from the last walk."""
    root = _library(tmp_path / "lib")
    client = await make_client(models_dir=root)
    await scan_results(client)
    walked, kept = _counters(client).walked_folders, _counters(client).kept_folders
    (root / "one" / "aa").mkdir()  # sorts between one/a and one/b: a fresh split would move 4 folders
    (root / "one" / "aa" / "copy.jpg").write_bytes(COPY)
    rescan = await scan_results(client)
    assert _counters(client).walked_folders - walked == 1
    assert _counters(client).kept_folders - kept == 6
    assert [path for group in _groups(rescan) for path in group if "/aa/" in path] == ["one/aa/copy.jpg"]
    assert _groups(rescan) == await _fresh(make_client, root, tmp_path)
    walked = _counters(client).walked_folders
    for name in os.listdir(root / "two" / "b"):
        (root / "two" / "b" / name).unlink()
    (root / "two" / "b").rmdir()
    rescan = await scan_results(client)
    assert _counters(client).walked_folders == walked  # the others' entries, packed without it
    assert not any("two/b/" in path for group in _groups(rescan) for path in group)
    assert _groups(rescan) == await _fresh(make_client, root, tmp_path)


async def test_a_part_with_a_sub_folder_is_walked_every_time(tmp_path: Path, make_client: ClientFactory) -> None:
    root = _library(tmp_path / "lib")
    nested = root / "one/b/sub"
    nested.mkdir()
    (nested / "deep.jpg").write_bytes(b"d" * 300)
    client = await make_client(models_dir=root)
    await scan_results(client)
    walked = _counters(client).walked_parts
    folders = _counters(client).walked_folders
    await scan_results(client)
    assert _counters(client).walked_parts - walked == 1  # one/b's part: not plain
    assert _counters(client).walked_folders - folders == 1  # one/b
    (nested / "deep-copy.jpg").write_bytes(b"d" * 300)  # an event for `sub`, none for one/b
    rescan = await scan_results(client)
    assert ["one/b/sub/deep-copy.jpg", "one/b/sub/deep.jpg"] in _groups(rescan)
    assert _groups(rescan) == await _fresh(make_client, root, tmp_path)


def _two_parts(root: Path) -> tuple[str, str]:
    """A folder of each of the scan's two parts (the test pool's two workers)."""
    folders = hashing.walk_roots(str(root))
    parts = [folders[0::2], folders[1::2]]
    first = min(folders)
    other = next(folder for folder in folders if (folder in parts[0]) != (first in parts[0]))
    return first, other


def _write_through(path: Path) -> None:
    with open(path, "r+b") as linked:  # in place: an event for the folder of this name only
        linked.write(b"y")


async def test_parts_sharing_a_hard_linked_file_are_kept_until_either_name_s_folder_changes(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    root = _library(tmp_path / "lib")
    first, other = _two_parts(root)
    os.link(root / first / "copy.jpg", root / other / "linked.jpg")  # one file, a name in each part
    client = await make_client(models_dir=root)
    await scan_results(client)
    walked = _counters(client).walked_parts
    unchanged = await scan_results(client)
    assert _counters(client).walked_parts == walked  # every name of the file is in a watched folder
    assert unchanged["stats"]["unchanged"] is True
    folders = _counters(client).walked_folders
    _write_through(root / other / "linked.jpg")
    rescan = await scan_results(client)
    assert _counters(client).walked_parts - walked == 2  # `other` changed, and `first` shares its file
    assert _counters(client).walked_folders - folders == 2
    assert _groups(rescan) == await _fresh(make_client, root, tmp_path)
    assert not any(f"{first}/copy.jpg" in group for group in _groups(rescan))  # its bytes changed


@pytest.mark.parametrize("where", ["outside the library", "in another part's sub-folder"])
async def test_a_part_with_a_file_named_where_no_watch_sees_is_walked_every_time(
    tmp_path: Path, make_client: ClientFactory, where: str
) -> None:
    root = _library(tmp_path / "lib")
    first, other = _two_parts(root)
    if where == "outside the library":
        second_name = tmp_path / "outside.jpg"
    else:
        (root / other / "sub").mkdir()
        second_name = root / other / "sub" / "linked.jpg"  # an event for `sub`, none for `other`
    os.link(root / first / "copy.jpg", second_name)
    client = await make_client(models_dir=root)
    await scan_results(client)
    walked, folders = _counters(client).walked_parts, _counters(client).walked_folders
    await scan_results(client)
    assert _counters(client).walked_parts - walked == (1 if where == "outside the library" else 2), where
    assert _counters(client).walked_folders - folders == (1 if where == "outside the library" else 2), where
    _write_through(second_name)
    rescan = await scan_results(client)
    assert _groups(rescan) == await _fresh(make_client, root, tmp_path)
    assert not any(f"{first}/copy.jpg" in group for group in _groups(rescan))


async def test_a_file_given_a_second_name_in_another_part_and_written_through_it_is_found(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    """The new name's folder sees the link and the write; the kept part's folder sees neither
    (the link count is the inode's, told to no folder): a new hard link in any watched folder
    lets no stamp hold."""
    root = _library(tmp_path / "lib")
    first, other = _two_parts(root)
    client = await make_client(models_dir=root)
    await scan_results(client)
    os.link(root / first / "copy.jpg", root / other / "linked.jpg")
    _write_through(root / other / "linked.jpg")
    rescan = await scan_results(client)
    assert _groups(rescan) == await _fresh(make_client, root, tmp_path)
    assert not any(f"{first}/copy.jpg" in group for group in _groups(rescan))


def test_a_part_walked_again_in_some_folders_packs_as_a_walk_of_it_all(tmp_path: Path) -> None:
    """Random folders (sub-folders, symbolic and hard links within and across folders), random
    changes, and a part whose folders come and go: `rewalk_packed` over the folders that changed
    or are new to the part (and a few that did not change) gives what `walk_packed` over all of
    them gives, digest included."""
    rng = random.Random(11)
    root = tmp_path / "lib"
    every_folder = [f"s/m{index}" for index in range(12)]
    folders = every_folder[:8]

    def files() -> list[Path]:
        return sorted(path for path in root.rglob("*.jpg") if path.is_file() and not path.is_symlink())

    def add(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([rng.randrange(3)]) * rng.choice([10, 20, 3000]))

    def somewhere() -> Path:
        folder = root / rng.choice(every_folder)
        folder = folder / "sub" if rng.random() < 0.15 else folder
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    for index in range(40):
        add(somewhere() / f"f{index}.jpg")
    changes: list[Callable[[], object]] = [
        lambda: add(somewhere() / f"n{rng.randrange(10**6)}.jpg"),
        lambda: rng.choice(files()).unlink(),
        lambda: add(rng.choice(files())),
        lambda: os.utime(rng.choice(files()), ns=(0, rng.randrange(10**18))),
        lambda: (lambda path: path.rename(path.with_name(f"r{rng.randrange(10**6)}.jpg")))(rng.choice(files())),
        lambda: os.link(rng.choice(files()), somewhere() / f"l{rng.randrange(10**6)}.jpg"),
        lambda: os.symlink(rng.choice(files()), somewhere() / f"y{rng.randrange(10**6)}.jpg"),
    ]

    def spans(part: hashing.PackedWalk) -> dict[str, tuple[Any, ...]]:
        """Each folder's entries, whether it is odd, and its linked files."""
        entries, ends = part.entries(), part.ends()
        return {
            folder: (entries[start:end], index in part.odd, [link[1:] for link in part.linked if link[0] == index])
            for index, (folder, start, end) in enumerate(zip(part.folders, part.starts, ends, strict=True))
        }

    last = hashing.walk_packed(str(root), folders)
    for _ in range(80):
        for _ in range(rng.randint(1, 3)):
            rng.choice(changes)()
        if rng.random() < 0.3:  # folders come and go (a new model, a model removed)
            kept = [folder for folder in folders if rng.random() < 0.9]
            folders = kept + [f for f in rng.sample(every_folder, 2) if f not in kept]
        fresh = hashing.walk_packed(str(root), folders)
        was, now = spans(last), spans(fresh)
        must = {index for index, folder in enumerate(folders) if was.get(folder) != now[folder]}
        again = sorted(must | set(rng.sample(range(len(folders)), min(2, len(folders)))))
        again_walked = hashing.rewalk_packed(str(root), last, folders, again)
        for field in ("digest", "count", "paths", "sizes", "mtimes", "devices", "inodes", "links",
                      "folders", "starts", "odd", "linked"):  # fmt: skip
            assert getattr(again_walked, field) == getattr(fresh, field), field
        last = fresh
