"""The worker-side pieces of the duplicate scan: the walk, the staged hashing, cancellation."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import xxhash

from server.scan import hashing


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_hash_whole_is_xxh3_128_of_the_file(tmp_path: Path) -> None:
    data = os.urandom(3 * hashing.READ_SIZE + 123)
    path = _write(tmp_path / "f.mp4", data)
    digest, count = hashing.hash_whole(str(path))
    assert digest == xxhash.xxh3_128_hexdigest(data)
    assert count == len(data)


def test_hash_edges_reads_only_head_and_tail(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    path = _write(tmp_path / "f.jpg", data)
    digest, count = hashing.hash_edges(str(path), len(data))
    expected = xxhash.xxh3_128_hexdigest(data[: hashing.EDGE] + data[-hashing.EDGE :])
    assert digest == expected
    assert count == 2 * hashing.EDGE
    changed = bytearray(data)
    changed[100_000] ^= 1
    _write(path, bytes(changed))
    assert hashing.hash_edges(str(path), len(data))[0] == digest  # the middle is not looked at


def test_resolve_group_full_hashes_only_what_still_collides(tmp_path: Path) -> None:
    size = 200_000
    base = os.urandom(size)
    head = bytearray(base)
    head[0] ^= 1
    mid = bytearray(base)
    mid[size // 2] ^= 1
    files = {"a.jpg": base, "b.jpg": base, "head.jpg": bytes(head), "mid.jpg": bytes(mid)}
    for name, data in files.items():
        _write(tmp_path / name, data)
    calls: list[tuple[str, str]] = []

    def compute(kind: str, path: str, size: int) -> str | None:
        calls.append((kind, path))
        full = os.path.join(tmp_path, path)
        return hashing.hash_whole(full)[0] if kind == "full" else hashing.hash_edges(full, size)[0]

    members: list[hashing.Member] = [(name, None, None) for name in files]
    outcomes = hashing.resolve_group(size, members, compute)
    assert [kind for kind, _ in calls].count("partial") == 4
    assert sorted(path for kind, path in calls if kind == "full") == ["a.jpg", "b.jpg", "mid.jpg"]
    by_name = dict(zip(files, outcomes, strict=True))
    assert by_name["a.jpg"][1] == by_name["b.jpg"][1] is not None
    assert by_name["mid.jpg"][1] not in (None, by_name["a.jpg"][1])
    assert by_name["head.jpg"][1] is None  # split off by the head+tail hash alone

    # Everything known: settled without computing anything.
    known = [(name, partial, full) for name, (partial, full) in zip(files, outcomes, strict=True)]
    assert hashing.resolve_group(size, known, None) == outcomes
    # Something missing and no hasher: the caller must send the group to a worker.
    with pytest.raises(hashing.NeedsWork):
        hashing.resolve_group(size, [("a.jpg", None, None), ("b.jpg", None, None)], None)


def test_small_files_are_keyed_by_their_full_hash(tmp_path: Path) -> None:
    _write(tmp_path / "x.png", b"x" * 1000)
    _write(tmp_path / "y.png", b"x" * 999 + b"y")
    outcomes, work = hashing.hash_groups(str(tmp_path), [(1000, [("x.png", None, None), ("y.png", None, None)])])
    (first, second) = outcomes[0]
    assert first[0] is None and second[0] is None
    assert first[1] == xxhash.xxh3_128_hexdigest(b"x" * 1000)
    assert first[1] != second[1]
    assert work.computed == 2 and work.bytes_read == 2000


def test_small_files_hash_what_is_on_disk_and_reuse_known_hashes(tmp_path: Path) -> None:
    """A small file rewritten larger since the walk is hashed whole as it is now (past the size
    the walk saw, even past SMALL_FILE); a known full hash is reused without reading the file."""
    grown = os.urandom(hashing.SMALL_FILE + 5000)
    _write(tmp_path / "grown.jpg", grown)
    _write(tmp_path / "same.jpg", b"s" * 1000)
    _write(tmp_path / "known.jpg", b"k" * 1000)
    members = [("grown.jpg", None, None), ("same.jpg", None, None), ("known.jpg", None, "cafe" * 8)]
    outcomes, work = hashing.hash_groups(str(tmp_path), [(1000, members)])
    assert outcomes[0] == [
        (None, xxhash.xxh3_128_hexdigest(grown)),
        (None, xxhash.xxh3_128_hexdigest(b"s" * 1000)),
        (None, "cafe" * 8),
    ]
    assert work.computed == 2 and work.bytes_read == len(grown) + 1000


def test_unreadable_member_is_left_out(tmp_path: Path) -> None:
    _write(tmp_path / "x.png", b"x" * 1000)
    outcomes, work = hashing.hash_groups(str(tmp_path), [(1000, [("x.png", None, None), ("gone.png", None, None)])])
    assert outcomes[0][1] == (None, None)
    assert work.computed == 1


def test_walk_lists_media_only_and_stays_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    _write(root / "site" / "model" / "a.jpg", b"a")
    _write(root / "site" / "model" / "deeper" / "b.MP4", b"b")
    _write(root / "site" / "model" / "notes.txt", b"t")
    _write(root / "site" / "model" / "c.jpg.part", b"p")
    _write(root / "site" / "model" / ".hidden.jpg", b"h")
    _write(root / "site" / ".trash" / "0123456789ab-01234567" / "data", b"d")
    _write(root / "site" / "model" / ".cache" / "d.jpg", b"d")
    _write(tmp_path / "outside" / "secret.jpg", b"s")
    os.symlink(tmp_path / "outside" / "secret.jpg", root / "site" / "model" / "escape.jpg")
    os.symlink(tmp_path / "outside", root / "site" / "model" / "escape_dir")
    os.symlink("a.jpg", root / "site" / "model" / "inside.jpg")
    os.symlink("..", root / "site" / "model" / "loop")  # a cycle: walked once, then stopped
    _write(root / "site" / "loose.jpg", b"l")  # directly in a site: no model holds it
    folders = hashing.walk_roots(str(root))
    assert folders == ["site/model"]
    found = {entry[0]: entry for entry in hashing.walk_folders(str(root), folders)}
    found = {path: entry for path, entry in found.items() if "/loop/" not in path}
    assert sorted(found) == ["site/model/a.jpg", "site/model/deeper/b.MP4", "site/model/inside.jpg"]
    assert found["site/model/inside.jpg"][5] is True
    assert found["site/model/inside.jpg"][3:5] == found["site/model/a.jpg"][3:5]


def test_cancel_flag_stops_a_large_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "big.mp4", b"\0" * (hashing.CANCEL_CHECK_BYTES * 2))
    flag = threading.Event()
    flag.set()
    monkeypatch.setattr(hashing, "_cancel", flag)
    with pytest.raises(hashing.ScanCancelled):
        hashing.hash_whole(str(path))
    with pytest.raises(hashing.ScanCancelled):
        hashing.hash_groups(str(tmp_path), [(10, [("big.mp4", None, None), ("other.mp4", None, None)])])


def test_colliding_files_are_hashed_once_and_compared(tmp_path: Path) -> None:
    size = 3 * hashing.READ_SIZE + 10
    base = os.urandom(size)
    mid = bytearray(base)
    mid[size // 2] ^= 1
    late = bytearray(base)
    late[size - hashing.EDGE - 1] ^= 1  # outside the head+tail blocks, in the last read block
    files = {"a.mp4": base, "b.mp4": base, "mid.mp4": bytes(mid), "c.mp4": base, "late.mp4": bytes(late)}
    for name, data in files.items():
        _write(tmp_path / name, data)
    outcomes, work = hashing.hash_groups(str(tmp_path), [(size, [(name, None, None) for name in files])])
    full = {name: outcome[1] for name, outcome in zip(files, outcomes[0], strict=True)}
    assert full["a.mp4"] == full["b.mp4"] == full["c.mp4"] == xxhash.xxh3_128_hexdigest(base)
    assert full["mid.mp4"] == xxhash.xxh3_128_hexdigest(bytes(mid))
    assert full["late.mp4"] == xxhash.xxh3_128_hexdigest(bytes(late))
    assert work.computed == 5 + 5  # five head+tail hashes, five full digests


def test_hash_together_equal_means_same_bytes_and_same_end(tmp_path: Path) -> None:
    data = os.urandom(100_000)
    paths = [_write(tmp_path / "a", data), _write(tmp_path / "b", data), _write(tmp_path / "c", data + b"x")]
    fds = [os.open(path, os.O_RDONLY) for path in paths]
    try:
        digest, equal, count = hashing.hash_together(fds, 100_000)
    finally:
        for fd in fds:
            os.close(fd)
    assert digest == xxhash.xxh3_128_hexdigest(data)
    assert equal == [True, True, False]  # same first 100,000 bytes, but longer
    assert count == 3 * 100_000 + 1  # c was read in one block, with its extra byte


def _evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages cannot be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_cold_page_cache_takes_the_prefetch_path_and_finds_the_same_groups(tmp_path: Path) -> None:
    size = 2 * hashing.READ_SIZE + 123
    base = os.urandom(size)
    decoy = bytearray(base)
    decoy[size // 2] ^= 1
    files = {"a.mp4": base, "b.mp4": base, "decoy.mp4": bytes(decoy), "c.mp4": base}
    for name, data in files.items():
        _write(tmp_path / name, data)
    small = {"s1.jpg": b"y" * 5000, "s2.jpg": b"y" * 5000, "s3.jpg": b"y" * 4999 + b"z"}
    for name, data in small.items():
        _write(tmp_path / name, data)
    groups = [(size, [(name, None, None) for name in files]), (5000, [(name, None, None) for name in small])]
    warm, _ = hashing.hash_groups(str(tmp_path), groups)
    for name in [*files, *small]:
        _evict(tmp_path / name)
    fd = os.open(tmp_path / "a.mp4", os.O_RDONLY)
    try:
        os.pread(fd, 1, 0)
        assert hashing._cached(fd, 0)  # what was just read is in the page cache
    finally:
        os.close(fd)
    _evict(tmp_path / "a.mp4")
    cold, work = hashing.hash_groups(str(tmp_path), groups)
    assert cold == warm  # the same hashes whether the data came from the disk or the cache
    full = [outcome[1] for outcome in cold[0]]
    assert full[0] == full[1] == full[3] == xxhash.xxh3_128_hexdigest(base) != full[2]
    assert [outcome[1] for outcome in cold[1]] == [xxhash.xxh3_128_hexdigest(data) for data in small.values()]
    assert work.bytes_read >= 4 * size  # every member of the colliding set read whole
