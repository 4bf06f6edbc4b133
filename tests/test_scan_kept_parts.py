"""Rescans keep the parts of the walk in which inotify saw nothing change
(`ExactScanRun._kept_parts`): an unchanged library is not walked again, a change has only its
part walked, and parts that watches on their folders cannot vouch for (a sub-folder, a symbolic
link, a second hard link) are walked every time. Whatever is kept, the results are a fresh
scan's."""

from __future__ import annotations

import os
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
        change()
        rescan = await scan_results(client)
        assert _counters(client).walked_parts - walked == 1, what  # the changed folder's part only
        assert _counters(client).kept_parts - kept == parts - 1, what
        assert _groups(rescan) == await _fresh(make_client, root, tmp_path), what


async def test_a_part_with_a_sub_folder_is_walked_every_time(tmp_path: Path, make_client: ClientFactory) -> None:
    root = _library(tmp_path / "lib")
    nested = root / "one/b/sub"
    nested.mkdir()
    (nested / "deep.jpg").write_bytes(b"d" * 300)
    client = await make_client(models_dir=root)
    await scan_results(client)
    walked = _counters(client).walked_parts
    await scan_results(client)
    assert _counters(client).walked_parts - walked == 1  # one/b's part: not plain
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
    _write_through(root / other / "linked.jpg")
    rescan = await scan_results(client)
    assert _counters(client).walked_parts - walked == 2  # `other` changed, and `first` shares its file
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
    walked = _counters(client).walked_parts
    await scan_results(client)
    assert _counters(client).walked_parts - walked == (1 if where == "outside the library" else 2), where
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
