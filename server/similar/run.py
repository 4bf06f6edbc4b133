"""The similar-image scan run: the walk's images, perceptual hashes, and the results.

`SimilarScanRun` is a `ScanRun` (server.scan.run: the walk, the outcome events, cancelling,
progress, batches in the workers) of kind `similar`. Its work phase, `similar`, takes every
image of the walk (`summarize_images`), settles from the perceptual cache what it can (an
unchanged image is never decoded again; an unchanged file that is not an image is not retried)
and sends the rest to the workers (`phash.hash_images`) in batches of at most
`IMAGE_BATCH_FILES` images. The progress counts images (`checked`/`total`) and their bytes.
At the end it keeps every hashed image in `SimilarResults`, groups them at the default
threshold (so `scan.finished` can tell the groups and wasted bytes, and the first
`GET /api/similar` finds them ready), and saves the results. Pure: no aiohttp.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from server.scan import hashing
from server.scan.results import FileInfo
from server.scan.run import Finished, ScanRun, Settled
from server.similar import phash
from server.similar.cache import PerceptualCache
from server.similar.results import ImageRecord, SimilarResults, SimilarScan, summarize_images

IMAGE_BATCH_FILES = 64  # images per worker task at most: decoding is slow, progress and cancels are not
MIN_IMAGE_BATCH = 4  # a few images per task at least, so a small library still keeps every worker busy


@dataclass(slots=True)
class ImageTally:
    """What one similar scan hashed (or took from the perceptual cache)."""

    hashed: int = 0  # images the workers decoded
    hashed_bytes: int = 0
    cache_hits: int = 0  # images settled by the perceptual cache
    not_images: int = 0  # files named like images that are not decodable
    records: list[ImageRecord] = field(default_factory=list)

    def stats(self, files: int, images: int, duration: float) -> dict[str, object]:
        return {
            "files": files,
            "images": images,
            "hashed": self.hashed,
            "hashed_bytes": self.hashed_bytes,
            "cache_hits": self.cache_hits,
            "cache_hit_rate": round(self.cache_hits / images, 4) if images else 1.0,
            "not_images": self.not_images,
            "duration_s": round(duration, 3),
        }


class SimilarScanRun(ScanRun):
    """The similar-image scan: perceptual hashes of every image, grouped on request."""

    kind = "similar"
    work_phase = "similar"
    cache: PerceptualCache
    results: SimilarResults

    async def _work(self, parts: list[hashing.PackedWalk]) -> Finished:
        walk = await asyncio.to_thread(lambda: summarize_images(hashing.unpack(parts)))
        self.progress.files_found = walk.files
        tally = ImageTally()
        self._begin_work(total=len(walk.images), bytes_total=sum(image.size for image in walk.images))
        pending = await self._settle_from_cache(walk.images, tally)
        root = str(self.tools.library.root)

        def arguments(batch: list[FileInfo]) -> tuple[str, list[str]]:
            return root, [image.path for image in batch]

        def record(batch: list[FileInfo], infos: list[phash.ImageInfo | None]) -> None:
            self._record_batch(batch, infos, tally)

        image_batches = self._batched(
            pending, lambda image: (image.size, 1), min_files=MIN_IMAGE_BATCH, max_files=IMAGE_BATCH_FILES
        )
        await self._in_workers(image_batches, phash.hash_images, arguments, record)
        self._work_done()
        stats = tally.stats(walk.files, len(walk.images), self.clock() - self.started)
        self.results.replace(SimilarScan(self.scan_id, time.time(), stats, tally.records))
        self.cache.retain(walk.paths)  # images gone from the library leave the cache too
        grouping = await self.results.grouping(phash.DEFAULT_THRESHOLD)
        return Finished(
            groups=len(grouping.groups),
            total_wasted=grouping.total_wasted,
            stats=stats,
            summary=f"{len(walk.images)} images, {tally.hashed} hashed, {len(grouping.groups)} groups",
        )

    async def _settle_from_cache(self, images: list[FileInfo], tally: ImageTally) -> list[FileInfo]:
        """Take what the perceptual cache knows; returns the images the workers must decode."""
        pending: list[FileInfo] = []
        settled = Settled()
        for count, image in enumerate(images):
            if count % 5000 == 4999:
                await asyncio.sleep(0)  # a library of millions: let requests through meanwhile
            entry = self.cache.entry(image.path, image.size, image.mtime_ns, image.inode)
            if entry is None:
                pending.append(image)
                continue
            self._keep(image, entry.info, tally)
            settled.add(Settled(files=1, nbytes=image.size, cache_hits=1, hash_cache_hits=1))
        tally.cache_hits += settled.cache_hits
        self._advance(settled)
        return pending

    def _record_batch(self, batch: list[FileInfo], infos: list[phash.ImageInfo | None], tally: ImageTally) -> None:
        nbytes = sum(image.size for image in batch)
        tally.hashed += len(batch)
        tally.hashed_bytes += nbytes
        self.tools.counters.hashed_bytes += nbytes
        for image, info in zip(batch, infos, strict=True):
            self.cache.store(image.path, image.size, image.mtime_ns, image.inode, info)
            self._keep(image, info, tally)
        self._advance(Settled(files=len(batch), nbytes=nbytes))

    @staticmethod
    def _keep(image: FileInfo, info: phash.ImageInfo | None, tally: ImageTally) -> None:
        if info is None:
            tally.not_images += 1
        else:
            tally.records.append(ImageRecord.of(image, info))
