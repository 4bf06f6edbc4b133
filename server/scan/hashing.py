"""The duplicate finder's disk work, run in worker processes: the walk and the staged hashing.

Everything here is a top-level, picklable function over plain data (no aiohttp, no event
loop), so it runs in a `ProcessPoolExecutor` started with the `forkserver` or `spawn` context.

Stages (the fclones / jdupes / rmlint recipe):
1. `walk_folders` lists media files with one `os.scandir` per folder, classified by the
   listings' own rule (`server.library.sort_entries`: hidden names and symlinks leaving the
   root skipped), and returns (path, size, mtime, device, inode); `walk_packed` sends them
   in columns with a digest, so the event loop tells an unchanged part without unpacking it.
2. The service groups them by size, drops unique sizes, collapses hard links and empty files.
3. `hash_groups` takes whole same-size groups: an XXH3-128 of a small head and tail block splits
   them (small files are hashed whole at once), and only what still collides is hashed fully,
   with 1 MiB reads into one reused buffer. Hashes already known (from the hash cache) are
   passed in and never recomputed. `resolve_group` is the one place that decides, per group,
   which hashes are needed; the service calls it without a hasher to settle groups from the
   cache alone.

A shared `multiprocessing.Event` (given to `init_worker`) cancels work between files and
every few MiB inside a large file.
"""

from __future__ import annotations

import os
import pickle
import stat
from array import array
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter, ne
from typing import Protocol, Union

import blake3
import xxhash

from server.library import FOLDER_FLAGS, sort_entries

EDGE = 4096  # head and tail block for the first split
SMALL_FILE = 64 * 1024  # at or below this size a file is hashed whole in the first pass
# full-hash read size: each buffer (and the hash or compare reading it) stays in a core's L2 cache;
# 1 MiB reads ran at half the speed (benchmarks/README.md, fifth session)
READ_SIZE = 128 * 1024
CANCEL_CHECK_BYTES = 16 * 1024 * 1024
LOCKSTEP_FILES = 16  # files compared in step with one hashed file
# Content hashes are XXH3-128 (32 hex digits): at ~14 GB/s a core it costs a fraction of reading
# the page cache (BLAKE3, ~4.8 GB/s, was half the hashing time). It only has to tell apart
# files of one size, and a delete compares the bytes again before it moves anything.
HASH_NAME = "xxh3-128"
_new_hasher = xxhash.xxh3_128
_hexdigest_of = xxhash.xxh3_128_hexdigest

# (path relative to the root, size, mtime_ns, device, inode, is_symlink)
WalkEntry = tuple[str, int, int, int, int, bool]
# (path relative to the root, known partial hash or None, known full hash or None)
Member = tuple[str, str | None, str | None]
# (partial hash used or None, full hash or None) per member; None/None: unreadable or unneeded
Outcome = tuple[str | None, str | None]


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


class ScanCancelled(Exception):
    """Raised inside a worker when the running scan is cancelled."""


class NeedsWork(Exception):
    """Raised by the no-op hasher: the group cannot be settled from known hashes alone."""


@dataclass(slots=True)
class Work:
    """What hashing a batch cost: hashes computed and bytes read."""

    computed: int = 0
    bytes_read: int = 0


_cancel: CancelFlag | None = None
_buffer: bytearray | None = None


def init_worker(cancel: CancelFlag | None) -> None:
    """Pool set-up (after `server.infra.pools.init_worker`): share the scan's cancel flag."""
    global _cancel
    _cancel = cancel


def check_cancel() -> None:
    """In a worker: raise ScanCancelled once the running scan is cancelled (any hashing loop)."""
    if _cancel is not None and _cancel.is_set():
        raise ScanCancelled()


# -- walking ------------------------------------------------------------------------------


def walk_roots(root: str) -> list[str]:
    """The folders one level under each site (site/model), the units the walk is split into.

    Raises OSError when the root itself cannot be listed. Media directly in a site folder
    belong to no model and are not scanned.
    """
    root_prefix = root.rstrip(os.sep) + os.sep
    folders: list[str] = []
    with os.scandir(root) as sites:
        _media, site_entries = sort_entries(root, sites, root_prefix)
    for site, _is_link in sorted(site_entries, key=lambda pair: pair[0].name):
        try:
            with os.scandir(site.path) as children:
                _media, models = sort_entries(site.path, children, root_prefix)
        except OSError:
            continue
        folders.extend(f"{site.name}/{child.name}" for child, _is_link in models)
    return folders


Linked = tuple[int, int, int, int]  # a file with more than one name: (folder index, device, inode, names)


@dataclass(slots=True)
class WalkShape:
    """What a walk noticed besides its entries: where each folder's entries start, which
    folders were not plain (a sub-folder or a symbolic link: an inotify watch on a plain folder
    sees every change made through it), and the files with a second hard link (a change
    through another name is told to that name's folder)."""

    starts: list[int]
    odd: list[int] = field(default_factory=list)  # indexes of the folders that are not plain
    linked: list[Linked] = field(default_factory=list)

    def mark_odd(self) -> None:
        """The folder being walked is not plain."""
        folder = len(self.starts) - 1
        if not self.odd or self.odd[-1] != folder:
            self.odd.append(folder)


def walk_folders(root: str, folders: Sequence[str], shape: WalkShape | None = None) -> list[WalkEntry]:
    """Media files at or below each folder (relative to `root`, the root's real path), folder
    after folder (`shape`, when given, gets what else the walk noticed).

    Kept lean (it is most of a rescan): one scandir per folder over an open folder descriptor,
    classified by `server.library.sort_entries` (the listings' own rule: a folder named like
    media is still a folder), no stat for ordinary folders (only symlinked ones, to stop
    loops), and one stat per media candidate, relative to the folder (`fstatat`: no path
    walk, and cheaper than `DirEntry.stat()`).
    """
    root_prefix = root.rstrip(os.sep) + os.sep
    found: list[WalkEntry] = []
    seen_links: set[tuple[int, int]] = set()
    pending = [(os.path.join(root, folder), folder, True) for folder in reversed(folders)]
    join, stat_at, is_regular = os.path.join, os.stat, stat.S_ISREG
    while pending:
        check_cancel()
        path, relative, top = pending.pop()  # depth first: a folder's tree before the next folder
        if top and shape is not None:
            shape.starts.append(len(found))
        try:
            fd = os.open(path, FOLDER_FLAGS)
        except OSError:
            continue
        try:
            try:
                with os.scandir(fd) as entries:
                    media, subfolders = sort_entries(path, entries, root_prefix)
            except OSError:
                continue
            prefix = relative + "/"
            if subfolders and shape is not None:
                shape.mark_odd()
            for entry, is_link in subfolders:
                name = entry.name
                if is_link:
                    try:
                        info = stat_at(name, dir_fd=fd)
                    except OSError:
                        continue
                    if (info.st_dev, info.st_ino) in seen_links:
                        continue
                    seen_links.add((info.st_dev, info.st_ino))
                pending.append((join(path, name), prefix + name, False))
            for entry, _kind, is_link in media:
                name = entry.name
                try:
                    info = stat_at(name, dir_fd=fd, follow_symlinks=is_link)
                except OSError:
                    continue
                if is_regular(info.st_mode):
                    found.append((prefix + name, info.st_size, info.st_mtime_ns, info.st_dev, info.st_ino, is_link))
                    if shape is not None:
                        if is_link:
                            shape.mark_odd()
                        elif info.st_nlink > 1:
                            shape.linked.append((len(shape.starts) - 1, info.st_dev, info.st_ino, info.st_nlink))
        finally:
            os.close(fd)
    return found


@dataclass(frozen=True, slots=True)
class PackedWalk:
    """A part of the walk as a worker sends it: its entries in columns (the paths joined by NUL,
    which no name holds, and the numbers in arrays: sent as a few buffers, unpacked in C) and a
    digest of them. Equal digests mean equal entries, so the event loop compares a scan's
    digests with the last scan's and unpacks only parts that changed; `of_sizes` picks the
    entries of some sizes out of a part without unpacking the rest. `small_hashes`: full hashes
    of the small files `walk_packed` was asked to hash, and what that cost."""

    digest: bytes
    count: int
    paths: str
    sizes: IntColumn
    mtimes: IntColumn
    devices: IntColumn
    inodes: IntColumn
    links: bytes  # 1 for a symbolic link, else 0
    folders: Sequence[str]  # walked, in order
    starts: array[int]  # where each folder's entries start
    odd: tuple[int, ...]  # `WalkShape.odd`: the folders a watch on them does not vouch for
    linked: tuple[Linked, ...]  # `WalkShape.linked`
    small_hashes: dict[str, str]
    work: Work

    @classmethod
    def of(
        cls,
        found: Sequence[WalkEntry],
        folders: Sequence[str],
        shape: WalkShape,
        small_hashes: dict[str, str],
        work: Work,
    ) -> PackedWalk:
        """`found` packed, with a BLAKE3 of every column, each with its length: a crafted file
        name cannot pass a changed walk off as the last one."""
        paths = "\0".join(map(_path_of, found))
        columns = (
            _int_column("q", map(_size_of, found)),
            _int_column("q", map(_mtime_of, found)),
            _int_column("Q", map(_device_of, found)),
            _int_column("Q", map(_inode_of, found)),
        )
        links = bytes(map(_link_of, found))
        digest = blake3.blake3()
        for column in (paths.encode(errors="surrogatepass"), *map(_column_bytes, columns), links):
            digest.update(len(column).to_bytes(8, "little"))
            digest.update(column)
        return cls(
            digest.digest(),
            len(found),
            paths,
            *columns,
            links,
            tuple(folders),
            array("Q", shape.starts),
            tuple(shape.odd),
            tuple(shape.linked),
            small_hashes,
            work,
        )

    def ends(self) -> list[int]:
        """Where each folder's entries end (`starts` shifted)."""
        return _ends(self.starts, self.count)

    def entries(self) -> list[WalkEntry]:
        if not self.count:
            return []
        columns = (self.sizes, self.mtimes, self.devices, self.inodes, map(bool, self.links))
        return list(zip(self.paths.split("\0"), *columns, strict=True))

    def of_sizes(self, sizes: Container[int]) -> list[WalkEntry]:
        """The entries whose size is in `sizes`, in walk order (the paths split, nothing else)."""
        return self.at(compress(range(self.count), map(sizes.__contains__, self.sizes)))

    def at(self, indexes: Iterable[int], names: list[str] | None = None) -> list[WalkEntry]:
        """The entries at `indexes` (`names`: the paths split, if the caller has them)."""
        indexes = list(indexes)
        if not indexes:
            return []
        paths = names if names is not None else self.paths.split("\0")
        sizes, mtimes, devices, inodes, links = self.sizes, self.mtimes, self.devices, self.inodes, self.links
        return [(paths[i], sizes[i], mtimes[i], devices[i], inodes[i], bool(links[i])) for i in indexes]

    def spans(self) -> Iterator[tuple[str, int, int]]:
        """(folder, start, end) of each folder that holds entries."""
        for folder, start, end in zip(self.folders, self.starts, self.ends(), strict=True):  # no folders: no spans
            if end > start:
                yield folder, start, end

    def numbers(self) -> tuple[IntColumn, IntColumn, IntColumn, IntColumn, bytes]:
        return self.sizes, self.mtimes, self.devices, self.inodes, self.links


def differences(before: Sequence[PackedWalk], after: Sequence[PackedWalk]) -> tuple[list[WalkEntry], list[WalkEntry]]:
    """The entries only `before` has and those only `after` has. Two parts at the same place
    with the same names in the same order (files touched or rewritten) are compared column by
    column in C, and only the entries that differ are made; the others folder by folder,
    wherever each folder was walked (a folder added shifts others into other parts): a folder
    with the same names is compared so too, one without is compared as sets of entries."""
    names: dict[int, list[str]] = {}

    def names_of(part: PackedWalk) -> list[str]:
        if id(part) not in names:
            names[id(part)] = part.paths.split("\0")
        return names[id(part)]

    went: list[WalkEntry] = []
    came: list[WalkEntry] = []

    def compare_numbers(old: PackedWalk, old_start: int, new: PackedWalk, start: int, end: int) -> None:
        """Entries with the same names at `old_start…` in `old` and `start…end` in `new`."""
        differ: set[int] = set()
        for now, was in zip(new.numbers(), old.numbers(), strict=True):
            now_slice, was_slice = now[start:end], was[old_start : old_start + end - start]
            if now_slice != was_slice:
                differ.update(compress(range(end - start), map(ne, now_slice, was_slice)))
        if differ:
            offsets = sorted(differ)
            went.extend(old.at((old_start + i for i in offsets), names_of(old)))
            came.extend(new.at((start + i for i in offsets), names_of(new)))

    aligned = len(before) == len(after)
    old_parts: list[PackedWalk] = [] if aligned else list(before)  # compared folder by folder
    new_parts: list[PackedWalk] = []
    for index, new in enumerate(after):
        old = before[index] if aligned else None
        if old is not None and old.paths == new.paths:
            compare_numbers(old, 0, new, 0, new.count)
            continue
        new_parts.append(new)
        if old is not None:
            old_parts.append(old)
    then = {folder: (part, start, end) for part in old_parts for folder, start, end in part.spans()}
    for new in new_parts:
        for folder, start, end in new.spans():
            old_span = then.pop(folder, None)
            if old_span is None:
                came += new.at(range(start, end), names_of(new))
                continue
            old, old_start, old_end = old_span
            if names_of(new)[start:end] == names_of(old)[old_start:old_end]:
                compare_numbers(old, old_start, new, start, end)
                continue
            old_entries = set(old.at(range(old_start, old_end), names_of(old)))
            new_entries = set(new.at(range(start, end), names_of(new)))
            went += old_entries - new_entries
            came += new_entries - old_entries
    for old, start, end in then.values():
        went += old.at(range(start, end), names_of(old))
    return went, came


_path_of, _size_of, _mtime_of, _device_of, _inode_of, _link_of = (itemgetter(i) for i in range(6))
IntColumn = Union["array[int]", list[int]]  # array is not subscriptable at run time before 3.12


def _int_column(typecode: str, values: Iterable[int]) -> IntColumn:
    """The values in an array, or in a list if one does not fit (a file dated after 2262 has
    an mtime in ns past 2**63)."""
    found = list(values)
    try:
        return array(typecode, found)
    except OverflowError:
        return found


def _column_bytes(column: IntColumn) -> bytes:
    """A column's bytes for the digest: an array's machine values, a list's pickle (tagged)."""
    if isinstance(column, array):
        return b"a" + column.tobytes()
    return b"l" + pickle.dumps(column, protocol=pickle.HIGHEST_PROTOCOL)


def walk_packed(root: str, folders: Sequence[str], hash_shared_small: bool = False) -> PackedWalk:
    """Worker task: `walk_folders`, packed (`PackedWalk.of`).

    With `hash_shared_small` (the scan knows no hash yet: a first scan), the small files that
    share their size with another file of this part are hashed whole at once, while their
    folders are fresh: two files of one size here are two files of that size in the library,
    so each of them is compared anyway and nothing is read that the scan would not read. Not
    when the first such file is not in the page cache: read cold one by one here, they would
    wait for the disk one at a time (the hashing stage asks for a group's files at once).
    """
    shape = WalkShape([])
    found = walk_folders(root, folders, shape)
    work = Work()
    small_hashes = hash_shared_small_files(root, found, work) if hash_shared_small else {}
    return PackedWalk.of(found, folders, shape, small_hashes, work)


def _ends(starts: Sequence[int], count: int) -> list[int]:
    """Where each folder's entries end, of `count` entries, given where each starts."""
    return [*starts[1:], count][: len(starts)]


def _by_folder(linked: Iterable[Linked]) -> dict[int, list[Linked]]:
    """Files with a second hard link, by the index of the folder holding the name."""
    by_folder: dict[int, list[Linked]] = {}
    for link in linked:
        by_folder.setdefault(link[0], []).append(link)
    return by_folder


def rewalk_packed(root: str, last: PackedWalk, folders: Sequence[str], again: Sequence[int]) -> PackedWalk:
    """Worker task: `folders` packed as a walk of them would be (`PackedWalk.of`: a folder
    unchanged gives the digest it gave), those at the indexes `again` walked, every other one's
    entries as `last` (a part of the last walk that holds it) has them."""
    walked = WalkShape([])
    fresh = walk_folders(root, [folders[index] for index in again], walked)
    walked_at = {folder: position for position, folder in enumerate(again)}
    walked_ends, walked_links = _ends(walked.starts, len(fresh)), _by_folder(walked.linked)
    names = last.paths.split("\0") if last.count else []
    last_at = {folder: index for index, folder in enumerate(last.folders)}
    last_ends, last_links = last.ends(), _by_folder(last.linked)
    shape = WalkShape([])
    found: list[WalkEntry] = []
    for index, folder in enumerate(folders):
        shape.starts.append(len(found))
        position = walked_at.get(index)
        if position is None:
            at = last_at[folder]
            found += last.at(range(last.starts[at], last_ends[at]), names)
            odd, links = at in last.odd, last_links.get(at, [])
        else:
            found += fresh[walked.starts[position] : walked_ends[position]]
            odd, links = position in walked.odd, walked_links.get(position, [])
        if odd:
            shape.mark_odd()
        shape.linked += [(index, *link[1:]) for link in links]
    return PackedWalk.of(found, folders, shape, {}, Work())


def hash_shared_small_files(root: str, found: Sequence[WalkEntry], work: Work) -> dict[str, str]:
    """Full hashes of the non-empty files up to SMALL_FILE whose size another file among
    `found` has (two names of one file are one file: hashed once, the hash given to both);
    a file that cannot be read is left out (the scan tries it again)."""
    by_size: dict[int, dict[tuple[int, int], list[str]]] = {}
    for path, size, _mtime, device, inode, _is_link in found:
        if 0 < size <= SMALL_FILE:
            by_size.setdefault(size, {}).setdefault((device, inode), []).append(path)
    hashes: dict[str, str] = {}
    root_fd = os.open(root, FOLDER_FLAGS)
    try:
        shared = [(size, files) for size, files in by_size.items() if len(files) > 1]
        if not shared or not _first_cached(root_fd, next(iter(shared[0][1].values()))[0]):
            return hashes  # a cold page cache: read later, group by group, with the disk's queue full
        for size, files in shared:
            for count, names in enumerate(files.values()):
                if not count % 64:
                    check_cancel()
                try:
                    fd = os.open(names[0], os.O_RDONLY | os.O_CLOEXEC, dir_fd=root_fd)
                    try:
                        digest, read = hash_small_fd(fd, size)
                    finally:
                        os.close(fd)
                except OSError:
                    continue
                work.computed += 1
                work.bytes_read += read
                for name in names:
                    hashes[name] = digest
    finally:
        os.close(root_fd)
    return hashes


def unpack(parts: Sequence[PackedWalk]) -> list[WalkEntry]:
    """The entries of every part, in order (blocking for big libraries; use a thread)."""
    entries: list[WalkEntry] = []
    for part in parts:
        entries.extend(part.entries())
    return entries


# -- hashing ------------------------------------------------------------------------------


_lockstep: list[bytearray] = []


def _lockstep_buffers(count: int) -> list[bytearray]:
    """One reused READ_SIZE buffer per file compared in step (allocated once per worker)."""
    while len(_lockstep) < count:
        _lockstep.append(bytearray(READ_SIZE))
    return _lockstep[:count]


def _read_buffer() -> bytearray:
    global _buffer
    if _buffer is None:
        _buffer = bytearray(READ_SIZE)
    return _buffer


def hash_fd(fd: int) -> tuple[str, int]:
    """XXH3-128 of a whole open file with 1 MiB reads; returns (hex digest, bytes read)."""
    buffer = _read_buffer()
    view = memoryview(buffer)
    hasher = _new_hasher()
    done = 0
    since_check = 0
    while True:
        count = os.preadv(fd, [buffer], done)
        if not count:
            break
        hasher.update(view[:count])
        done += count
        since_check += count
        if since_check >= CANCEL_CHECK_BYTES:
            check_cancel()
            since_check = 0
    return hasher.hexdigest(), done


def hash_together(fds: Sequence[int], size: int) -> tuple[str, list[bool], int]:
    """XXH3-128 of the first file while the others are compared with it block by block.

    Returns (digest of the first, per file whether it is byte-for-byte the first, bytes read).
    A file equal to the first has its digest by definition, so a colliding set costs one hash
    and plain compares (memcmp) for the rest; a file that differs drops out at its first
    differing block and is hashed on its own by the caller; an equal file must also end where
    the first ends. `size` is the size the walk saw (files may have changed since).
    """
    buffers = _lockstep_buffers(len(fds))
    views = [memoryview(buffer) for buffer in buffers]
    hasher = _new_hasher()
    equal = [True] * len(fds)
    done = offset = since_check = 0
    while True:
        count = os.preadv(fds[0], [buffers[0]], offset)
        if not count:
            break
        first = views[0][:count]
        hasher.update(first)
        done += count
        for index in range(1, len(fds)):
            if equal[index]:
                other_count = os.preadv(fds[index], [buffers[index]], offset)
                done += other_count
                # startswith compares with memcmp and copies nothing (memoryview == does not)
                equal[index] = other_count == count and buffers[index].startswith(first)
        offset += count
        since_check += count * len(fds)
        if since_check >= CANCEL_CHECK_BYTES:
            check_cancel()
            since_check = 0
    for index in range(1, len(fds)):
        if equal[index] and os.pread(fds[index], 1, offset):
            equal[index] = False  # longer than the first
    return hasher.hexdigest(), equal, done


_probe = bytearray(1)


def _cached(fd: int, offset: int) -> bool:
    """Whether the byte at `offset` is in the page cache (a read that never waits for the disk)."""
    try:
        return os.preadv(fd, [_probe], offset, os.RWF_NOWAIT) >= 0
    except OSError:  # EAGAIN: not cached (or no RWF_NOWAIT here); a real error shows when read
        return False


def _first_cached(root_fd: int, relative: str) -> bool:
    """Whether the first byte of a file is in the page cache (unreadable: no)."""
    try:
        fd = os.open(relative, os.O_RDONLY | os.O_CLOEXEC, dir_fd=root_fd)
    except OSError:
        return False
    try:
        return _cached(fd, 0)
    finally:
        os.close(fd)


def hash_small_fd(fd: int, size: int) -> tuple[str, int]:
    """XXH3-128 of a whole small file the walk saw at `size` bytes, with one read (a file that
    grew since is read to its end); returns (hex digest, bytes read)."""
    data = os.read(fd, size + 1)
    if len(data) > size:
        return hash_fd(fd)
    return _hexdigest_of(data), len(data)


def edges_fd(fd: int, size: int) -> tuple[str, int]:
    """XXH3-128 of the first and last EDGE bytes of an open file larger than 2 * EDGE."""
    head = os.pread(fd, EDGE, 0)
    tail = os.pread(fd, EDGE, size - EDGE)
    return _hexdigest_of(head + tail), len(head) + len(tail)


def hash_whole(path: str, dir_fd: int | None = None) -> tuple[str, int]:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return hash_fd(fd)
    finally:
        os.close(fd)


def hash_edges(path: str, size: int, dir_fd: int | None = None) -> tuple[str, int]:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return edges_fd(fd, size)
    finally:
        os.close(fd)


_known_hashes, _NOTHING_KNOWN = itemgetter(1, 2), (None, None)  # of a Member

Hasher = Callable[[str, str, int], str | None]  # (kind "partial"|"full", path, size) -> hex or None
Prefetch = Callable[[list[str], int], None]  # (paths about to be read whole, size)
ManyHasher = Callable[[list[str], int], list[str | None]]  # full hashes of files likely equal


def resolve_group(
    size: int,
    members: Sequence[Member],
    compute: Hasher | None,
    prefetch: Prefetch | None = None,
    compute_many: ManyHasher | None = None,
    prefetch_edges: Prefetch | None = None,
) -> list[Outcome]:
    """Decide the hashes a same-size group needs and return them per member.

    Files up to SMALL_FILE are keyed by their full hash straight away; larger ones by the
    head+tail hash first, and only members that still share it get a full hash. Known hashes
    are reused; with `compute=None` a missing one raises NeedsWork.
    """

    if compute is None and _NOTHING_KNOWN in map(_known_hashes, members):
        raise NeedsWork()  # a file with no hash known needs one whatever its size: said at C speed

    def need(kind: str, path: str, known: str | None) -> str | None:
        if known is not None:
            return known
        if compute is None:
            raise NeedsWork()
        return compute(kind, path, size)

    outcomes: list[Outcome] = [(None, None)] * len(members)
    if all(full is not None for _path, _partial, full in members):
        return [(partial, full) for _path, partial, full in members]
    if size <= SMALL_FILE:
        if prefetch is not None:
            prefetch([path for path, _partial, full in members if full is None], size)
        for index, (path, _partial, full) in enumerate(members):
            outcomes[index] = (None, need("full", path, full))
        return outcomes
    if prefetch_edges is not None:
        prefetch_edges([path for path, partial, _full in members if partial is None], size)
    by_partial: dict[str, list[int]] = {}
    for index, (path, partial, _full) in enumerate(members):
        digest = need("partial", path, partial)
        outcomes[index] = (digest, None)
        if digest is not None:
            by_partial.setdefault(digest, []).append(index)
    for indexes in by_partial.values():
        if len(indexes) < 2:
            continue
        unknown = [i for i in indexes if members[i][2] is None]
        if prefetch is not None:
            prefetch([members[i][0] for i in unknown], size)
        if compute_many is not None and len(unknown) > 1:
            digests = compute_many([members[i][0] for i in unknown], size)
            for index, digest in zip(unknown, digests, strict=True):
                outcomes[index] = (outcomes[index][0], digest)
        for index in indexes:
            path, _partial, full = members[index]
            if outcomes[index][1] is None and (full is not None or compute_many is None or len(unknown) < 2):
                outcomes[index] = (outcomes[index][0], need("full", path, full))
    return outcomes


class OpenFiles:
    """The files of one group, opened once for both the head+tail and the full hash (relative
    to the root's descriptor: no path walk from `/`; the perceptual hash opens its files so too).

    Only small groups keep their files open (a group can hold thousands of same-size files).
    """

    KEEP_OPEN_UP_TO = 64

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self.keep = False
        self.open: dict[str, int] = {}

    def start_group(self, members: int) -> None:
        self.close_all()
        self.keep = members <= self.KEEP_OPEN_UP_TO

    def get(self, relative: str) -> int:
        fd = self.open.get(relative)
        if fd is None:
            fd = os.open(relative, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.root_fd)
            if self.keep:
                self.open[relative] = fd
        return fd

    def release(self, relative: str, fd: int) -> None:
        if not self.keep:
            os.close(fd)

    def close_all(self) -> None:
        for fd in self.open.values():
            os.close(fd)
        self.open.clear()


def hash_groups(root: str, groups: Sequence[tuple[int, Sequence[Member]]]) -> tuple[list[list[Outcome]], Work]:
    """Worker task: settle a batch of same-size groups, computing only the missing hashes.

    Before whole files are read, the kernel is asked to read them ahead (WILLNEED), so on a
    cold cache the disk sees every file of a colliding set at once, not one after another.
    """
    work = Work()
    root_fd = os.open(root, FOLDER_FLAGS)  # short lookups: relative opens
    files = OpenFiles(root_fd)

    def compute(kind: str, relative: str, size: int) -> str | None:
        check_cancel()
        try:
            fd = files.get(relative)
            try:
                digest, count = hash_fd(fd) if kind == "full" else edges_fd(fd, size)
            finally:
                files.release(relative, fd)
        except OSError:
            return None
        work.computed += 1
        work.bytes_read += count
        return digest

    def compute_many(paths: list[str], size: int) -> list[str | None]:
        """Files sharing size and head+tail are most likely equal: hash one, compare the rest."""
        digests: list[str | None] = [None] * len(paths)
        for start in range(0, len(paths), LOCKSTEP_FILES):
            chunk = list(range(start, min(start + LOCKSTEP_FILES, len(paths))))
            check_cancel()
            opened: list[tuple[int, int]] = []  # (index, fd)
            try:
                for index in chunk:
                    try:
                        opened.append((index, files.get(paths[index])))
                    except OSError:
                        continue
                if not opened:
                    continue
                try:
                    digest, equal, count = hash_together([fd for _index, fd in opened], size)
                except OSError:
                    continue
                work.bytes_read += count
                for (index, _fd), same in zip(opened, equal, strict=True):
                    if same:
                        digests[index] = digest
                        work.computed += 1
            finally:
                for index, fd in opened:
                    files.release(paths[index], fd)
            for index in chunk:
                if digests[index] is None:
                    digests[index] = compute("full", paths[index], size)  # differs: its own hash
        return digests

    def first_cached(paths: list[str], offset: int) -> bool:
        try:
            return _cached(files.get(paths[0]), offset)
        except OSError:
            return True  # unreadable: nothing to prefetch for (it fails when hashed)

    def prefetch(paths: list[str], size: int) -> None:
        # Only when the data is not in the page cache already (then the advice is wasted work).
        if len(paths) < 2 or not files.keep or first_cached(paths, (size // 2) & ~4095):
            return
        for relative in paths:
            try:
                os.posix_fadvise(files.get(relative), 0, size, os.POSIX_FADV_WILLNEED)
            except OSError:
                continue

    def prefetch_edges(paths: list[str], size: int) -> None:
        """Cold cache: ask for every head and tail block of the group at once (one disk queue)."""
        if len(paths) < 2 or not files.keep or first_cached(paths, 0):
            return
        for relative in paths:
            try:
                fd = files.get(relative)
                os.posix_fadvise(fd, 0, EDGE, os.POSIX_FADV_WILLNEED)
                os.posix_fadvise(fd, size - EDGE, EDGE, os.POSIX_FADV_WILLNEED)
            except OSError:
                continue

    def hash_small(size: int, members: Sequence[Member]) -> list[Outcome]:
        """A group of files up to SMALL_FILE (most of an ordinary library): each read whole with
        one read and hashed, the per-file work kept to the syscalls (resolve_group's rule for
        such groups, without its per-file indirection)."""
        prefetch([path for path, _partial, full in members if full is None], size)
        result: list[Outcome] = []
        for count, (path, _partial, full) in enumerate(members):
            if full is None:
                if not count % 64:
                    check_cancel()
                try:
                    fd = files.get(path)
                    try:
                        digest, read = hash_small_fd(fd, size)
                    finally:
                        files.release(path, fd)
                except OSError:
                    result.append((None, None))
                    continue
                work.computed += 1
                work.bytes_read += read
                full = digest
            result.append((None, full))
        return result

    outcomes = []
    try:
        for size, members in groups:
            files.start_group(len(members))
            if size <= SMALL_FILE:
                outcomes.append(hash_small(size, members))
            else:
                outcomes.append(resolve_group(size, members, compute, prefetch, compute_many, prefetch_edges))
        return outcomes, work
    finally:
        files.close_all()
        os.close(root_fd)
