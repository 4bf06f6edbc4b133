"""The duplicate scan's results: what a walk found, the results document and its file.

`summarize_walk` turns the workers' walk into same-size groups (links collapsed); a scan run
fills a `Tally` with what it settled and each size's duplicate groups as it settles them
(`duplicate_group`); `ResultsStore.build` turns both into the document
`GET /api/duplicates` serves (groups sorted by wasted bytes, then by the natural order of their
first file). `ResultsStore` keeps that document in memory and in `<cache_dir>/duplicates.json`
(a `DocumentFile`: written atomically, read again when another instance sharing the cache dir
rewrote it), and drops deleted paths from it. `verify_identical` is the byte-for-byte check a
delete makes before anything moves to the trash. `Resolution` is a bulk clean-up, for
duplicates and similar images alike: a plan per chosen group (`resolve_groups` makes the
duplicates' by rule), its preview, and carrying it out group by group. Pure domain code: no
aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, compress, groupby, repeat
from operator import itemgetter, ne
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import orjson

from server.errors import Conflict, NotFound
from server.infra.atomic import write_atomically
from server.library import natural_key, natural_order
from server.scan import hashing

log = logging.getLogger("archive_catalog")

RESULTS_FILE = "duplicates.json"
COMPARE_CHUNK = 1024 * 1024

NaturalKey = list[int | str]
Document = dict[str, Any]


class FileInfo(NamedTuple):
    """A file as the walk saw it: a `hashing.WalkEntry` with names (made from one in C)."""

    path: str
    size: int
    mtime_ns: int
    device: int
    inode: int
    is_link: bool


_as_file = partial(tuple.__new__, FileInfo)
_path_of, _size_of, _inode_of, _sized_identity_of = itemgetter(0), itemgetter(1), itemgetter(4), itemgetter(1, 3, 4)
Entry = TypeVar("Entry", bound=tuple[Any, ...])  # a walk entry, or the FileInfo made of one


@dataclass(slots=True)
class WalkResult:
    """A walk's figures and same-size groups. A walk told as changes since the last one
    (`walk_changes`) holds only the groups of the changed sizes, and the paths gone instead of
    every path."""

    files: int  # media files found, hard links and symlinks to one file counted once
    bytes: int
    groups: list[tuple[int, list[FileInfo]]]  # same-size groups of 2+ non-empty files, largest first
    paths: set[str] | None  # every path walked (None: told as changes, or not asked for)
    gone: list[str] = field(default_factory=list)  # told as changes: the last walk's paths not walked now

    def compared(self) -> tuple[int, int]:
        """Files sharing their size with another (in `groups`), and their bytes."""
        return sum(len(members) for _size, members in self.groups), sum(
            size * len(members) for size, members in self.groups
        )


@dataclass(slots=True)
class Tally:
    """What one scan run hashed (or took from the hash cache)."""

    needed: int = 0  # hashes needed
    computed: int = 0  # hashes the workers computed (the rest came from the hash cache)
    hashed_bytes: int = 0
    files_compared: int = 0  # files that shared their size with another and were compared
    file_cache_hits: int = 0  # of those, files whose every hash came from the hash cache
    unreadable: int = 0  # of those, files that could not be read (tried again next scan)
    by_size: dict[int, tuple[int, int]] = field(default_factory=dict)  # size -> files compared, hashes needed
    groups: list[Document] = field(default_factory=list)  # the duplicate groups found (`duplicate_group`)


def names_better(entry: hashing.WalkEntry, current: hashing.WalkEntry) -> bool:
    """Of two names of one file (device, inode), whether `entry` is the one to keep: a real
    path over a symlink, then the first in path order."""
    return (entry[5], entry[0]) < (current[5], current[0])


def summarize_walk(entries: list[hashing.WalkEntry]) -> WalkResult:
    """`summarize_parts` for entries already unpacked."""
    if not entries:
        return WalkResult(0, 0, [], set())
    names, sizes, mtimes, devices, inodes, links = zip(*entries, strict=True)
    return _summarize_columns(names, sizes, mtimes, devices, inodes, links)


def summarize_parts(parts: Sequence[hashing.PackedWalk], *, with_paths: bool = True) -> WalkResult:
    """The walk's figures and same-size groups, from its parts' columns (blocking; a thread);
    without `with_paths`, no set of every path (`WalkResult.paths` None: nothing to retain).

    Sizes are counted in C, and only the entries of a shared size are made, in C too (the
    number columns are joined as arrays); links are collapsed only where two entries have one
    (device, inode). Two names of one file (hard link, or a symlink inside the root) always
    have the same size, so they can only meet inside a same-size group; files of a unique size
    are done. One (device, inode) keeps one path: a real one over a symlink, then the first in
    order, in the place of its first name.
    """
    filled = [part for part in parts if part.count]
    numbers = list(zip(*(part.numbers() for part in filled), strict=True)) or [()] * 5
    return _summarize_columns(
        list(chain.from_iterable(part.paths.split("\0") for part in filled)),
        *map(_joined, numbers),
        with_paths=with_paths,
    )


def _joined(columns: Sequence[Sequence[int]]) -> Sequence[int]:
    """One number column of every part, joined: arrays of one type (and bytes) by copying
    their machine values, anything else (an mtime past 2262 is a list) into a list."""
    if all(isinstance(column, bytes) for column in columns):
        return b"".join(column for column in columns if isinstance(column, bytes))
    first = columns[0]
    if isinstance(first, array):
        joined: array[int] = array(first.typecode)
        for column in columns:
            if not isinstance(column, array) or column.typecode != first.typecode:
                break
            joined.extend(column)
        else:
            return joined
    return list(chain.from_iterable(columns))


def _summarize_columns(
    names: Sequence[str],
    sizes: Sequence[int],
    mtimes: Sequence[int],
    devices: Sequence[int],
    inodes: Sequence[int],
    links: Sequence[int | bool],
    *,
    with_paths: bool = True,
) -> WalkResult:
    counts = Counter(sizes)
    walk = WalkResult(len(sizes), sum(sizes), [], set(names) if with_paths else None)
    shared = list(compress(range(len(sizes)), map((1).__lt__, map(counts.__getitem__, sizes))))
    if not shared:
        return walk

    def pick(column: Sequence[Any]) -> Iterable[Any]:
        return itemgetter(*shared)(column) if len(shared) > 1 else (column[shared[0]],)

    columns = (pick(names), pick(sizes), pick(mtimes), pick(devices), pick(inodes), map(bool, pick(links)))
    files: list[FileInfo] = list(map(tuple.__new__, repeat(FileInfo), zip(*columns, strict=True)))
    kept = _one_name_per_file(files, _sized_identity_of)  # sized: as if collapsed group by group
    if len(kept) < len(files):
        walk.files -= len(files) - len(kept)
        walk.bytes -= sum(map(_size_of, files)) - sum(map(_size_of, kept))
        files = kept
    files.sort(key=_size_of)  # stable: walk order kept within a size
    in_order = list(map(_size_of, files))
    # where each size's run starts and ends (sorted: a run per size), found in C
    starts = [0, *compress(range(1, len(in_order)), map(ne, in_order[1:], in_order))]
    ends = [*starts[1:], len(in_order)]
    walk.groups = [
        (in_order[start], files[start:end])
        for start, end in zip(reversed(starts), reversed(ends), strict=True)
        if end - start > 1 and in_order[start] > 0
    ]
    return walk


def _one_name_per_file(members: list[Entry], identity: Callable[[Entry], Hashable] = itemgetter(3, 4)) -> list[Entry]:
    """Entries with links collapsed: one per `identity` ((device, inode): same-size entries),
    `names_better`'s, in the place of the file's first name."""
    inodes = list(map(_inode_of, members))  # two names of one file share an inode: only those are looked at
    counts = Counter(inodes)
    if len(counts) == len(members):
        return members
    maybe_linked = list(compress(range(len(members)), map((1).__lt__, map(counts.__getitem__, inodes))))
    best: dict[Hashable, int] = {}  # identity -> index of its best name
    first: dict[Hashable, int] = {}  # identity -> index of its first name
    for index in maybe_linked:
        key = identity(members[index])
        current = best.get(key)
        if current is None:
            best[key] = first[key] = index
        elif names_better(members[index], members[current]):
            best[key] = index
    if len(first) == len(maybe_linked):
        return members  # the same inode on different devices: no links
    kept, keep = list(members), [True] * len(members)
    for index in maybe_linked:
        key = identity(members[index])
        if first[key] == index:
            kept[index] = members[best[key]]
        else:
            keep[index] = False
    return list(compress(kept, keep))


def walk_changes(last: LastWalk, parts: list[hashing.PackedWalk]) -> tuple[WalkResult, set[int]]:
    """The walk `parts` told as changes since `last`, and the sizes of the files that appeared,
    went, or changed path, size, mtime or inode: every group of another size is the last scan's.

    A part whose digest is the last one's at the same place holds the same entries; the parts
    whose digest moved are compared folder by folder (`hashing.differences`: a folder added to
    the library shifts others into other parts, and they compare equal there). Only the entries
    of the changed sizes are then picked out of the parts (nothing is unpacked whole), and the
    figures move by what those sizes' files were and are (links collapsed).
    """
    if len(parts) == len(last.parts):
        same = [old.digest == new.digest for old, new in zip(last.parts, parts, strict=True)]
        old_moved = [old for old, kept in zip(last.parts, same, strict=True) if not kept]
    else:
        same, old_moved = [False] * len(parts), list(last.parts)
    new_moved = [new for new, kept in zip(parts, same, strict=True) if not kept]
    went, came = hashing.differences(old_moved, new_moved)
    changed = set(map(_size_of, chain(went, came)))
    was: dict[int, list[hashing.WalkEntry]] = {}
    found: dict[int, list[hashing.WalkEntry]] = {}
    if changed:
        for part, kept in zip(parts, same, strict=True):  # in walk order
            entries = part.of_sizes(changed)
            _by_size(found, entries)
            if kept:
                _by_size(was, entries)  # the same entries then
        for part in old_moved:
            _by_size(was, part.of_sizes(changed))
    walk = WalkResult(last.files, last.nbytes, [], None)
    for size in sorted(changed, reverse=True):  # largest first
        old_files, new_files = _one_name_per_file(was.get(size, [])), _one_name_per_file(found.get(size, []))
        walk.files += len(new_files) - len(old_files)
        walk.bytes += size * (len(new_files) - len(old_files))
        if size > 0 and len(new_files) > 1:
            walk.groups.append((size, list(map(_as_file, new_files))))
    walk.gone = sorted(set(map(_path_of, went)).difference(map(_path_of, came)))
    return walk, changed


def _by_size(groups: dict[int, list[hashing.WalkEntry]], entries: list[hashing.WalkEntry]) -> None:
    for entry in entries:
        groups.setdefault(entry[1], []).append(entry)


def scan_stats(files: int, nbytes: int, tally: Tally, duration: float, *, unchanged: bool = False) -> Document:
    """A results document's `stats` (the same figures, named the same, as scan_progress);
    `unchanged`: the walk was the last scan's, its results carried over."""
    hash_cache_hits = tally.needed - tally.computed
    return {
        "files": files,
        "files_compared": tally.files_compared,
        "bytes": nbytes,
        "hashed_bytes": tally.hashed_bytes,
        "hashes": tally.needed,
        "cache_hits": tally.file_cache_hits,
        "hash_cache_hits": hash_cache_hits,
        "cache_hit_rate": round(hash_cache_hits / tally.needed, 4) if tally.needed else 1.0,
        "duration_s": round(duration, 3),
        "unchanged": unchanged,
    }


@dataclass(frozen=True, slots=True)
class LastWalk:
    """What a rescan reuses of the last one: the walk a document was built from (its parts,
    packed: `hashing.PackedWalk`, and their digests), the hash cache's generation then, the
    document, and the figures its stats and progress are made of, per same-size group too.

    A same-size group's result depends only on its files, and a file whose path, size, mtime and
    inode are unchanged is trusted to hold the same bytes (the hash cache's own rule). So a walk
    with the same digests has the same groups (carried over whole), and a walk that differs
    keeps every group of a size none of whose files changed (`walk_changes`). A changed cache
    (cleared, files forgotten, another instance's file read) or a scan that could not read some
    file (it is tried again) leaves no LastWalk; so while one holds, the cache knows no path the
    walk did not find, and a rescan drops from it just the paths gone since. Kept in memory only
    (the packed walk: a file's path and 33 bytes).
    """

    parts: list[hashing.PackedWalk]
    cache_generation: int
    document: Document
    files: int
    nbytes: int
    by_size: dict[int, tuple[int, int]]  # size -> files compared and hashes needed in its group
    stamps: list[list[int | None]] | None = None  # per part, its folders' inotify stamps from before the walk

    @property
    def digests(self) -> list[bytes]:
        return [part.digest for part in self.parts]

    @property
    def compared(self) -> int:
        """Files sharing their size with another."""
        return sum(files for files, _needed in self.by_size.values())

    @property
    def compared_bytes(self) -> int:
        return sum(size * files for size, (files, _needed) in self.by_size.items())

    @property
    def needed(self) -> int:
        """Hashes needed."""
        return sum(needed for _files, needed in self.by_size.values())


class ResultsStore:
    """The last results document, in memory and in `<cache_dir>/duplicates.json`, and the walk
    it was built from (`LastWalk`)."""

    def __init__(self, cache_dir: Path) -> None:
        self.file = DocumentFile(cache_dir / RESULTS_FILE, "scan results")
        self.document: Document | None = None
        self.last_walk: LastWalk | None = None
        self._natural_keys: dict[str, NaturalKey] = {}  # of the last results' groups' first files (rescans reuse them)

    def require(self) -> Document:
        """The document; 404 before any scan has finished."""
        if self.document is None:
            raise NotFound("No duplicate scan has finished yet; start one with POST /api/scan.", code="no_scan")
        return self.document

    def build(
        self, scan_id: str, walk: WalkResult, tally: Tally, duration: float, kept: list[dict[str, Any]] | None = None
    ) -> Document:
        """A new document from a finished scan (blocking for big libraries; use a thread), with
        the groups `kept` from the last one (sizes where no file changed) as they were."""
        groups = [*tally.groups, *(kept or ())]
        self._natural_keys = _order_groups(groups, self._natural_keys)
        stats = scan_stats(walk.files, walk.bytes, tally, duration)
        return _document(scan_id, time.time(), stats, groups)

    def carry_over(self, scan_id: str, last: LastWalk, duration: float) -> Document:
        """The document of a rescan whose walk is `last`'s: the same groups, every hash as if
        taken from the hash cache (none read), and this scan's id, time and duration."""
        tally = Tally(needed=last.needed, files_compared=last.compared, file_cache_hits=last.compared)
        stats = scan_stats(last.files, last.nbytes, tally, duration, unchanged=True)
        return {**last.document, "scan_id": scan_id, "finished_at": time.time(), "stats": stats}

    def drop(self, deleted: list[str]) -> None:
        """Remove deleted paths; a group left with one file is no longer a group."""
        if self.document is None:
            return
        gone = set(deleted)
        groups = []
        for group in self.document["groups"]:
            paths = [p for p in group["files"] if p not in gone]
            if len(paths) > 1:
                groups.append(_group(group["hash"], group["size"], paths, mtimes_of(group)))
        _order_groups(groups, self._natural_keys)
        document = self.document
        self.document = _document(document["scan_id"], document["finished_at"], document["stats"], groups)

    # -- the file ---------------------------------------------------------------------------

    def load(self) -> None:
        """Read the file (blocking); a missing or unreadable one leaves no results."""
        self.document = self.file.read()

    def refresh(self) -> None:
        """Read the file again if another instance (sharing the cache dir) rewrote it (blocking)."""
        if self.file.rewritten():
            loaded = self.file.read()
            if loaded is not None:
                self.document = loaded

    async def save(self) -> None:
        """Replace the file atomically with the document (written in a thread)."""
        if self.document is not None:
            await self.file.write(orjson.dumps(self.document))


class DocumentFile:
    """One JSON document in a file of the cache dir: replaced atomically (a kill leaves the old
    or the new one), read back, and able to tell when another instance rewrote it."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what  # for the log: "scan results", "similar-image results"
        self._mtime_ns = 0  # of the file as we last read or wrote it

    def read(self) -> Document | None:
        """The document (blocking); None when missing or unreadable."""
        try:
            self._mtime_ns = self.path.stat().st_mtime_ns
            document: Document = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("%s file unreadable; ignoring it", self.what)
            return None
        return document

    def rewritten(self) -> bool:
        """Whether the file changed since we last read or wrote it (blocking; False if gone)."""
        try:
            return self.path.stat().st_mtime_ns != self._mtime_ns
        except OSError:
            return False

    async def write(self, data: bytes) -> None:
        """Replace the file with `data` (in a thread)."""
        await asyncio.to_thread(write_atomically, self.path, data)
        with contextlib.suppress(OSError):
            self._mtime_ns = self.path.stat().st_mtime_ns


def mtimes_of(group: dict[str, Any]) -> dict[str, float | None]:
    """Path -> modification time (seconds) as the scan saw it; None in results saved before
    groups carried `mtimes`."""
    mtimes = group.get("mtimes") or [None] * len(group["files"])
    return dict(zip(group["files"], mtimes, strict=True))


def duplicate_group(digest: str, size: int, files: Sequence[FileInfo]) -> Document:
    """The document group of `files` (two or more of one size and full hash), as the walk saw them."""
    paths = [file.path for file in files]
    return _group(digest, size, paths, {file.path: file.mtime_ns / 1e9 for file in files})


def _group(digest: str, size: int, paths: list[str], mtimes: dict[str, float | None]) -> dict[str, Any]:
    """A duplicate group: files in natural order, `mtimes` parallel to them."""
    files = [paths[index] for index in natural_order(paths)]
    return {
        "id": digest[:16],
        "hash": digest,
        "size": size,
        "wasted": size * (len(files) - 1),
        "files": files,
        "mtimes": [mtimes.get(path) for path in files],
    }


def _order_groups(groups: list[dict[str, Any]], known: dict[str, NaturalKey]) -> dict[str, NaturalKey]:
    """Sort `groups` in place: most bytes wasted first, then by their first files' natural
    order. A first file's natural key is made only where the bytes wasted tie (`known`: keys
    the last results had; a rescan finds the same groups and computes none); returns the keys
    used, for the next results."""
    used: dict[str, NaturalKey] = {}

    def first_file_key(group: dict[str, Any]) -> NaturalKey:
        first = group["files"][0]
        key = used[first] = known.get(first) or natural_key(first)
        return key

    groups.sort(key=_wasted_first)
    for start, end in _ties(groups):
        groups[start:end] = sorted(groups[start:end], key=first_file_key)
    return used


def _wasted_first(group: dict[str, Any]) -> int:
    return -int(group["wasted"])


def _ties(groups: list[dict[str, Any]]) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of two or more groups wasting the same bytes."""
    start = 0
    for _wasted, run in groupby(map(_wasted_first, groups)):
        length = sum(1 for _ in run)
        if length > 1:
            yield start, start + length
        start += length


def _document(scan_id: str, finished_at: float, stats: dict[str, Any], groups: list[dict[str, Any]]) -> Document:
    """A results document of `groups`, already in order (`_order_groups`)."""
    return {
        "scan_id": scan_id,
        "finished_at": finished_at,
        "stats": stats,
        "total_wasted": sum(g["wasted"] for g in groups),
        "groups": groups,
    }


# -- verified deletes ------------------------------------------------------------------------


def verify_identical(keep: str, keep_path: Path, others: list[tuple[str, Path]]) -> None:
    """Raise 409 unless every other file is a distinct file with exactly the bytes of `keep`
    (blocking; use a thread)."""
    keep_info = keep_path.stat()
    for rel, path in others:
        info = path.stat()
        if (info.st_dev, info.st_ino) == (keep_info.st_dev, keep_info.st_ino):
            raise Conflict(
                f"{rel!r} is the same file as {keep!r} (a link); deleting it would remove every copy.",
                code="same_file",
            )
        if info.st_size != keep_info.st_size or not _same_bytes(keep_path, path):
            raise Conflict(
                f"{rel!r} no longer has the same bytes as {keep!r}; nothing was deleted. Scan again.",
                code="not_identical",
            )


def _same_bytes(a: Path, b: Path) -> bool:
    with open(a, "rb", buffering=0) as fa, open(b, "rb", buffering=0) as fb:
        while True:
            chunk_a = fa.read(COMPARE_CHUNK)
            chunk_b = fb.read(COMPARE_CHUNK)
            if chunk_a != chunk_b:
                return False
            if not chunk_a:
                return True


# -- bulk resolution: which copy each group keeps --------------------------------------------

RULES = ("oldest", "newest", "shortest_path", "in_site", "in_model")

Group = dict[str, Any]
Plan = dict[str, Any]  # {"keep": path, "delete": [path, ...], "bytes": their total size}
Moved = dict[str, Any]  # what moving to the trash tells: {"deleted", "bytes", "items"}


@dataclass(slots=True)
class Resolution:
    """What a rule decides over chosen groups: per group the copy kept and the copies to move."""

    plan: list[Plan] = field(default_factory=list)  # {"id", "keep", "delete": [...], "bytes"}
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"id", "reason"}

    @classmethod
    def build(
        cls, groups: list[Group], chosen: list[str] | None, plan_of: Callable[[Group], Plan | None], skip_reason: str
    ) -> Resolution:
        """Apply `plan_of` to the groups `chosen` by id (None: every group), in `groups`' order.

        A group `plan_of` leaves alone (None) is skipped for `skip_reason`, as is an id the
        groups do not hold (resolved already?).
        """
        if chosen is not None:
            by_id = {group["id"]: group for group in groups}
            wanted = list(dict.fromkeys(chosen))
            resolution = cls(skipped=[{"id": gid, "reason": "unknown_group"} for gid in wanted if gid not in by_id])
            groups = [by_id[gid] for gid in wanted if gid in by_id]
        else:
            resolution = cls()
        for group in groups:
            plan = plan_of(group)
            if plan is None:
                resolution.skipped.append({"id": group["id"], "reason": skip_reason})
            else:
                resolution.plan.append({"id": group["id"], **plan})
        return resolution

    @property
    def files(self) -> int:
        return sum(len(entry["delete"]) for entry in self.plan)

    @property
    def bytes(self) -> int:
        return sum(int(entry["bytes"]) for entry in self.plan)

    def preview(self) -> dict[str, Any]:
        return {
            "groups": len(self.plan),
            "files": self.files,
            "bytes": self.bytes,
            "plan": [{key: entry[key] for key in ("id", "keep", "delete")} for entry in self.plan],
            "skipped": self.skipped,
        }

    async def carry_out(
        self,
        verify: Callable[[str, list[str]], Awaitable[list[str]]],
        move: Callable[[list[str]], Awaitable[Moved]],
        all_changed_code: str,
    ) -> dict[str, Any]:
        """Check each group with `verify(keep, delete)` (409 or 404: it changed since the scan,
        so it is left alone and listed in `changed`), then `move` what passed to the trash;
        409 `all_changed_code` when every group changed (nothing moves)."""
        targets: list[str] = []
        changed: list[dict[str, str]] = []
        for entry in self.plan:
            try:
                targets += await verify(entry["keep"], entry["delete"])
            except (Conflict, NotFound) as error:
                changed.append({"id": entry["id"], "reason": error.code})
        if self.plan and len(changed) == len(self.plan):
            raise Conflict(
                "Every chosen group changed since the scan; nothing was moved. Scan again.", code=all_changed_code
            )
        moved = await move(targets)
        return {**moved, "changed": changed, "skipped": self.skipped}


def resolve_groups(
    document: Document, rule: str, chosen: list[str] | None, *, site: str | None = None, model: str | None = None
) -> Resolution:
    """Apply `rule` to the duplicate groups `chosen` by id (None: every group), in the document's order.

    Files are in natural order, so taking the first best copy breaks ties by natural path
    order. `in_site`/`in_model` keep the first copy under that site (or site/model); a group
    with no such copy is skipped, as is an id the results do not hold (resolved already?).
    """

    def plan_of(group: Group) -> Plan | None:
        keep = _kept_copy(group, rule, site, model)
        if keep is None:
            return None
        delete = [path for path in group["files"] if path != keep]
        return {"keep": keep, "delete": delete, "bytes": group["size"] * len(delete)}

    return Resolution.build(document["groups"], chosen, plan_of, f"no_copy_{rule}")


def _kept_copy(group: Group, rule: str, site: str | None, model: str | None) -> str | None:
    files: list[str] = group["files"]
    if rule == "shortest_path":
        return min(files, key=len)
    if rule in ("oldest", "newest"):
        mtimes = mtimes_of(group)
        known = [path for path in files if mtimes[path] is not None]
        if not known:
            return files[0]
        sign = 1 if rule == "oldest" else -1
        return min(known, key=lambda path: sign * (mtimes[path] or 0.0))
    prefix = f"{site}/" if rule == "in_site" else f"{site}/{model}/"
    return next((path for path in files if path.startswith(prefix)), None)
