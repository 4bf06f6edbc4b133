"""The similar-image scan's results: the images it hashed, their file, and grouping on request.

`summarize_images` picks a walk's images (by suffix, `phash.IMAGE_SUFFIXES`; empty files left
out; one path per file, links collapsed as the duplicate scan does). A finished scan keeps each
image's path, size, mtime, inode, perceptual hash, dimensions and format in a `SimilarScan`;
`SimilarResults` holds the last one in memory and in `<cache_dir>/similar.json` (written
atomically, read again when another instance sharing the cache dir rewrote it; a file of another
format or hash algorithm is ignored), and drops deleted paths from it.

Groups are not stored: they depend on the threshold the user asks for. `SimilarResults.grouping`
builds them on request in a thread (`index.group_similar` over the hashes), and keeps the last
few groupings per (results version, threshold). In a group the best copy comes first (largest
pixel count, then largest size, then natural path order), each file with its Hamming distance
to that first one; `wasted` is the bytes of all but the first; groups are sorted by `wasted`,
largest first; a group's id is derived from its member paths, so it is stable for the same set.
Pure domain code: no aiohttp.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3
import numpy
import orjson

from server.cache.ttl import TTLCache
from server.errors import NotFound
from server.infra.pools import default_workers
from server.library import natural_key
from server.scan import hashing
from server.scan.results import DocumentFile, FileInfo, names_better
from server.similar import index, phash
from server.similar.phash import ImageInfo

RESULTS_FILE = "similar.json"
FORMAT_VERSION = 1
GROUPINGS_KEPT = 4  # groupings kept in memory (a few thresholds of the current results)
# numpy releases the GIL in the index's passes: one thread per usable core (two here) groups a
# million hashes at the default threshold in under 10 s (benchmarks/bench_similar_index.py)
GROUPING_THREADS = default_workers(1, 4)

Document = dict[str, Any]


@dataclass(slots=True)
class ImageWalk:
    files: int  # media files found, hard links and symlinks to one file counted once
    images: list[FileInfo]  # non-empty image files, one path per file
    paths: set[str]  # every image path walked (links too)


def summarize_images(entries: list[hashing.WalkEntry]) -> ImageWalk:
    """The images of a walk (blocking for big libraries; use a thread)."""
    suffixes = phash.IMAGE_SUFFIXES
    by_file: dict[tuple[int, int], hashing.WalkEntry] = {}
    paths: set[str] = set()
    files: set[tuple[int, int]] = set()
    for entry in entries:
        key = (entry[3], entry[4])
        files.add(key)
        if os.path.splitext(entry[0])[1].lower() not in suffixes:
            continue
        paths.add(entry[0])
        if entry[1] == 0:
            continue
        current = by_file.get(key)
        if current is None or names_better(entry, current):
            by_file[key] = entry
    images = [FileInfo(*entry) for entry in by_file.values()]
    return ImageWalk(len(files), images, paths)


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One image as the scan saw it."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    phash: int
    width: int
    height: int
    format: str

    @classmethod
    def of(cls, file: FileInfo, info: ImageInfo) -> ImageRecord:
        return cls(file.path, file.size, file.mtime_ns, file.inode, info.phash, info.width, info.height, info.format)

    def row(self) -> list[Any]:
        return [self.path, self.size, self.mtime_ns, self.inode, self.phash, self.width, self.height, self.format]

    @classmethod
    def from_row(cls, row: list[Any]) -> ImageRecord:
        path, size, mtime_ns, inode, hash_value, width, height, image_format = row
        return cls(path, int(size), int(mtime_ns), int(inode), int(hash_value), int(width), int(height), image_format)


@dataclass(slots=True)
class SimilarScan:
    """A finished similar-image scan: its figures and every image it hashed."""

    scan_id: str
    finished_at: float
    stats: dict[str, Any]
    images: list[ImageRecord]
    _by_path: dict[str, ImageRecord] | None = field(default=None, repr=False)

    def record(self, path: str) -> ImageRecord | None:
        if self._by_path is None:
            self._by_path = {image.path: image for image in self.images}
        return self._by_path.get(path)


@dataclass(frozen=True, slots=True)
class Grouping:
    """The groups of one results version at one threshold."""

    threshold: int
    groups: list[dict[str, Any]]  # as GET /api/similar lists them, in its order
    total_wasted: int
    group_of: dict[str, int]  # member path -> index in `groups`

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {group["id"]: group for group in self.groups}


def group_images(images: list[ImageRecord], threshold: int) -> Grouping:
    """Group `images` whose hashes are within `threshold` (blocking: use a thread)."""
    hashes = numpy.fromiter((image.phash for image in images), dtype=numpy.uint64, count=len(images))
    found = index.group_similar(hashes, threshold, workers=GROUPING_THREADS)
    keyed = [_group([images[i] for i in members]) for members in found]
    keyed.sort(key=lambda item: (-item[1]["wasted"], item[0]))
    groups = [group for _key, group in keyed]
    group_of = {file["path"]: number for number, group in enumerate(groups) for file in group["files"]}
    return Grouping(threshold, groups, sum(group["wasted"] for group in groups), group_of)


def _group(members: list[ImageRecord]) -> tuple[list[int | str], dict[str, Any]]:
    """A group (best copy first) and the natural key of its first path (to order groups)."""
    keys = {image.path: natural_key(image.path) for image in members}
    ordered = sorted(members, key=lambda image: (-image.width * image.height, -image.size, keys[image.path]))
    best = ordered[0]
    files = [_file(image, phash.distance(best.phash, image.phash)) for image in ordered]
    identity = "\0".join(sorted(keys)).encode()
    group = {
        "id": blake3.blake3(identity).hexdigest(8),
        "max_distance": max(file["distance"] for file in files),
        "wasted": sum(image.size for image in ordered[1:]),
        "files": files,
    }
    return keys[best.path], group


def _file(image: ImageRecord, distance: int) -> dict[str, Any]:
    site, _, rest = image.path.partition("/")
    return {
        "path": image.path,
        "site": site,
        "model": rest.rpartition("/")[0],
        "size": image.size,
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "mtime": image.mtime_ns / 1e9,
        "phash": f"{image.phash:016x}",
        "distance": distance,
    }


class SimilarResults:
    """The last similar-image scan, in memory and in `<cache_dir>/similar.json`, and its
    groupings by threshold."""

    def __init__(self, cache_dir: Path) -> None:
        self.file = DocumentFile(cache_dir / RESULTS_FILE, "similar-image results")
        self.scan: SimilarScan | None = None
        self._version = 0  # bumped whenever `scan` changes: the groupings' key
        self._groupings: TTLCache[tuple[int, int], Grouping] = TTLCache("similar_groups", GROUPINGS_KEPT)

    def require(self) -> SimilarScan:
        """The last scan; 404 before any similar scan has finished."""
        if self.scan is None:
            raise NotFound(
                "No similar-image scan has finished yet; start one with POST /api/scan?kind=similar.",
                code="no_similar_scan",
            )
        return self.scan

    def replace(self, scan: SimilarScan) -> None:
        self.scan = scan
        self._version += 1

    def drop(self, deleted: list[str]) -> bool:
        """Forget deleted paths (their groups shrink or go at the next grouping); whether the
        results held any of them."""
        if self.scan is None or not any(self.scan.record(path) for path in deleted):
            return False
        gone = set(deleted)
        kept = [image for image in self.scan.images if image.path not in gone]
        self.replace(SimilarScan(self.scan.scan_id, self.scan.finished_at, self.scan.stats, kept))
        return True

    async def grouping(self, threshold: int) -> Grouping:
        """The groups at `threshold` (404 before any scan), built once per results version."""
        scan, version = self.require(), self._version

        async def build() -> Grouping:
            return await asyncio.to_thread(group_images, scan.images, threshold)

        return await self._groupings.get_or_compute((version, threshold), build)

    # -- the file ---------------------------------------------------------------------------

    def load(self) -> None:
        """Read the file (blocking); a missing, unreadable or foreign one leaves no results."""
        scan = self._decode(self.file.read())
        if scan is not None:
            self.replace(scan)

    def refresh(self) -> None:
        """Read the file again if another instance (sharing the cache dir) rewrote it (blocking)."""
        if self.file.rewritten():
            self.load()

    async def save(self) -> None:
        """Replace the file atomically (encoded and written in a thread)."""
        if self.scan is not None:
            await self.file.write(await asyncio.to_thread(self._encode, self.scan))

    @staticmethod
    def _encode(scan: SimilarScan) -> bytes:
        return orjson.dumps(
            {
                "version": FORMAT_VERSION,
                "hash": phash.HASH_NAME,
                "scan_id": scan.scan_id,
                "finished_at": scan.finished_at,
                "stats": scan.stats,
                "images": [image.row() for image in scan.images],
            }
        )

    def _decode(self, document: Document | None) -> SimilarScan | None:
        if document is None:
            return None
        if document.get("version") != FORMAT_VERSION or document.get("hash") != phash.HASH_NAME:
            return None  # another format or hash algorithm: its hashes do not compare with ours
        try:
            images = [ImageRecord.from_row(row) for row in document["images"]]
            return SimilarScan(document["scan_id"], float(document["finished_at"]), document["stats"], images)
        except (KeyError, TypeError, ValueError):
            return None
