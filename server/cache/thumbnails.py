"""Thumbnails: made in worker processes, stored on disk, bounded, computed once per key.

Pure domain code (no aiohttp). A thumbnail is a JPEG whose longest side is the requested
width, keyed by the source's real path, size, mtime and that width, so a changed file gets a
new thumbnail and the old one ages out. The work runs in a `ProcessPoolExecutor` with an
explicit forkserver context (never on the event loop): Pillow for images, one ffmpeg frame for
videos when ffmpeg is on PATH, a drawn placeholder otherwise (or when a file cannot be
decoded). Concurrent requests for one key share one job (single-flight); a semaphore caps the
jobs in flight so a grid of 500 images cannot starve the server. The disk cache is bounded in
bytes and evicts least-recently-used files first.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import shutil
import subprocess
import time
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass
from pathlib import Path

from blake3 import blake3

from server.archives.pixels import eight_bit
from server.infra.atomic import is_temp, write_atomically
from server.infra.pools import WorkerPool

log = logging.getLogger("archive_catalog")

MIN_WIDTH = 64
MAX_WIDTH = 1024
DEFAULT_WIDTH = 320
DEFAULT_MAX_BYTES = 500_000_000  # 500 MB (decimal, as every size this app shows)
JPEG_QUALITY = 82
FFMPEG_TIMEOUT_S = 20.0
SUFFIX = ".jpg"
CONTENT_TYPE = "image/jpeg"
RENDERING = "v2"  # part of every key: change it whenever the same source renders differently (v2: 16-bit)
# A fresh entry is never evicted: a response may be about to open it.
EVICTION_GRACE_S = 10.0


# -- worker side (runs in the pool's processes; top-level and picklable) -----------------


def _fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    width, height = size
    if width >= height:
        return longest, max(1, round(height * longest / width))
    return max(1, round(width * longest / height)), longest


def _placeholder(width: int, video: bool) -> bytes:
    """A neutral 16:9 (video) or 4:3 (image) card with a play triangle or a broken-image mark."""
    from PIL import Image, ImageDraw

    size = _fit((16, 9) if video else (4, 3), width)
    image = Image.new("RGB", size, (46, 52, 64))
    draw = ImageDraw.Draw(image)
    cx, cy, r = size[0] / 2, size[1] / 2, min(size) / 5
    if video:
        draw.polygon([(cx - r * 0.7, cy - r), (cx - r * 0.7, cy + r), (cx + r, cy)], fill=(229, 233, 240))
    else:
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], outline=(229, 233, 240), width=max(1, width // 64))
        draw.line([cx - r, cy + r, cx + r, cy - r], fill=(229, 233, 240), width=max(1, width // 64))
    return _encode(image)


def _encode(image: object) -> bytes:
    from PIL import Image

    assert isinstance(image, Image.Image)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=image.width * image.height > 40_000)
    return buffer.getvalue()


def _scaled(image: object, width: int) -> bytes:
    from PIL import Image, ImageOps

    assert isinstance(image, Image.Image)
    image = eight_bit(ImageOps.exif_transpose(image) or image)  # 16-bit scans: scaled, not clipped white
    if image.mode not in ("RGB", "L"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    target = _fit(image.size, width)
    return _encode(image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0))


def _image_thumbnail(source: str, width: int) -> bytes:
    from PIL import Image

    with Image.open(source) as image:
        image.draft("RGB", (width, width))  # JPEG: decode at a reduced scale, much faster
        image.seek(0)
        image.load()
        return _scaled(image, width)


def _video_frame(source: str, width: int, ffmpeg: str) -> bytes | None:
    from PIL import Image

    for seek in ("1", "0"):  # one second in skips fade-ins; very short clips fall back to 0
        try:
            completed = subprocess.run(
                [ffmpeg, "-nostdin", "-v", "error", "-ss", seek, "-i", source, "-frames:v", "1",
                 "-vf", f"scale='min({width},iw)':-2", "-f", "image2pipe", "-vcodec", "png", "-"],
                capture_output=True,
                timeout=FFMPEG_TIMEOUT_S,
                check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return None
        if completed.returncode == 0 and completed.stdout:
            with Image.open(io.BytesIO(completed.stdout)) as frame:
                frame.load()
                return _scaled(frame, width)
    return None


def render_thumbnail(source: str, destination: str, width: int, video: bool, ffmpeg: str | None) -> str:
    """Write the thumbnail of `source` to `destination` atomically; returns how it was made."""
    how = "placeholder"
    data: bytes | None = None
    try:
        if video:
            if ffmpeg:
                data = _video_frame(source, width, ffmpeg)
                how = "frame" if data else "placeholder"
        else:
            data = _image_thumbnail(source, width)
            how = "image"
    except Exception:  # undecodable or truncated file: the placeholder says so
        data = None
        how = "placeholder"
    if data is None:
        data = _placeholder(width, video)
    write_atomically(Path(destination), data, durable=False)  # a lost thumbnail is made again
    return how


def warm_up(_: int = 0) -> int:
    from PIL import Image  # noqa: F401  (import once per worker, before the first request)

    return os.getpid()


def _size_if_file(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


# -- server side -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """A media file as the thumbnail key sees it."""

    path: str
    size: int
    mtime_ns: int
    video: bool


def stat_source(path: Path, video: bool) -> Source:
    info = os.stat(path)
    return Source(os.path.realpath(path), info.st_size, info.st_mtime_ns, video)


def thumbnail_key(source: Source, width: int) -> str:
    text = f"{source.path}\x00{source.size}\x00{source.mtime_ns}\x00{width}\x00{RENDERING}"
    return blake3(text.encode("utf-8", "surrogateescape")).hexdigest()[:40]


@dataclass(slots=True)
class _Job:
    """One thumbnail being made: who waits for it, and whether a worker has it yet."""

    task: asyncio.Task[Path]
    waiters: int = 0
    started: bool = False


@dataclass(slots=True)
class _Entry:
    size: int
    used: float


class ThumbnailCache:
    """Thumbnails on disk under `folder`, at most `max_bytes`, made in `pool`."""

    def __init__(
        self,
        folder: Path,
        pool: WorkerPool,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_concurrent: int = 4,
        ffmpeg: str | None = None,
        eviction_grace_s: float = EVICTION_GRACE_S,
    ) -> None:
        self.folder = folder
        self.pool = pool
        self.max_bytes = max_bytes
        self.max_concurrent = max_concurrent
        self.ffmpeg = ffmpeg
        self.eviction_grace_s = eviction_grace_s
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._jobs: dict[str, _Job] = {}
        self._entries: dict[str, _Entry] = {}
        self._bytes = 0
        self._running = 0
        self.hits = 0
        self.misses = 0
        self.generated = 0
        self.placeholders = 0
        self.evictions = 0
        self.abandoned = 0
        self.peak_running = 0

    # -- paths and index ------------------------------------------------------------------

    def path_for(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}{SUFFIX}"

    def load_index(self) -> int:
        """Count what an earlier run left on disk (call in a thread at start)."""
        self._entries.clear()
        self._bytes = 0
        if not self.folder.is_dir():
            return 0
        for shard in os.scandir(self.folder):
            if not shard.is_dir():
                continue
            for entry in os.scandir(shard.path):
                name = entry.name
                if is_temp(name):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                    continue
                if not name.endswith(SUFFIX):
                    continue
                with contextlib.suppress(OSError):
                    info = entry.stat()
                    self._remember(name[: -len(SUFFIX)], info.st_size, info.st_atime)
        self._evict()
        return len(self._entries)

    def _remember(self, key: str, size: int, used: float) -> None:
        old = self._entries.get(key)
        if old is not None:
            self._bytes -= old.size
        self._entries[key] = _Entry(size, used)
        self._bytes += size

    def _forget(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size

    def _evict(self) -> None:
        if self._bytes <= self.max_bytes:
            return
        target = int(self.max_bytes * 0.9)
        now = time.time()
        for key in sorted(self._entries, key=lambda k: self._entries[k].used):
            if self._bytes <= target:
                break
            if now - self._entries[key].used < self.eviction_grace_s and len(self._entries) > 1:
                continue
            with contextlib.suppress(OSError):
                os.unlink(self.path_for(key))
            self._forget(key)
            self.evictions += 1

    # -- the one entry point ----------------------------------------------------------------

    async def get(self, media: Path, video: bool, width: int) -> Path:
        """The thumbnail file of `media` at `width`, made once however many ask at once."""
        if not MIN_WIDTH <= width <= MAX_WIDTH:
            raise ValueError(f"width {width} outside {MIN_WIDTH}..{MAX_WIDTH}")
        source = await asyncio.to_thread(stat_source, media, video)
        key = thumbnail_key(source, width)
        destination = self.path_for(key)
        if key in self._entries:  # a file removed behind our back is reported through drop()
            self.hits += 1
            self._entries[key].used = time.time()
            return destination
        job = self._jobs.get(key)
        if job is None:  # no await between this check and registering the job: single-flight
            self.misses += 1
            job = _Job(asyncio.create_task(self._make(source, width, key, destination)))
            self._jobs[key] = job
            job.task.add_done_callback(lambda _t: self._jobs.pop(key, None) if self._jobs.get(key) is job else None)
        else:
            self.hits += 1
        job.waiters += 1
        try:
            # shielded: one client going away does not cancel the work others wait for
            return await asyncio.shield(job.task)
        finally:
            job.waiters -= 1
            if job.waiters == 0 and not job.started and not job.task.done():
                # everyone who asked left (a grid scrolled past) before the work began: drop it
                self._jobs.pop(key, None)
                job.task.cancel()
                self.abandoned += 1

    async def _make(self, source: Source, width: int, key: str, destination: Path) -> Path:
        existing = await asyncio.to_thread(_size_if_file, destination)
        if existing is not None:  # written by another instance sharing CACHE_DIR
            self._remember(key, existing, time.time())
            return destination
        async with self._semaphore:
            job = self._jobs.get(key)
            if job is not None:
                job.started = True
            self._running += 1
            self.peak_running = max(self.peak_running, self._running)
            try:
                how = await self._render(source, destination, width)
            finally:
                self._running -= 1
        self.generated += 1
        if how == "placeholder":
            self.placeholders += 1
        size = (await asyncio.to_thread(destination.stat)).st_size
        self._remember(key, size, time.time())
        self._evict()
        return destination

    async def _render(self, source: Source, destination: Path, width: int) -> str:
        """Run the work in the pool; a pool broken by a dying worker is replaced, once per job."""
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            executor = self.pool.executor
            try:
                return await loop.run_in_executor(
                    executor, render_thumbnail, source.path, str(destination), width, source.video, self.ffmpeg
                )
            except BrokenExecutor:
                self.pool.replace(executor)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # -- stats and clearing ---------------------------------------------------------------

    def stats(self) -> dict[str, object]:
        return {
            "entries": len(self._entries),
            "bytes": self._bytes,
            "max_bytes": self.max_bytes,
            "hits": self.hits,
            "misses": self.misses,
            "generated": self.generated,
            "placeholders": self.placeholders,
            "evictions": self.evictions,
            "abandoned": self.abandoned,
            "pool_restarts": self.pool.restarts,
            "in_flight": len(self._jobs),
            "max_concurrent": self.max_concurrent,
            "video_frames": "ffmpeg" if self.ffmpeg else "placeholder",
        }

    def drop(self, thumbnail: Path) -> None:
        """Forget a thumbnail whose file turned out to be gone (cleared by another instance)."""
        self._forget(thumbnail.name.removesuffix(SUFFIX))

    async def clear(self) -> int:
        """Delete every stored thumbnail; jobs in flight still finish and are kept."""
        self._entries.clear()
        self._bytes = 0
        return await asyncio.to_thread(self._remove_files)

    def _remove_files(self) -> int:
        removed = 0
        if self.folder.is_dir():
            for shard in os.scandir(self.folder):
                if shard.is_dir():
                    for entry in os.scandir(shard.path):
                        if is_temp(entry.name):
                            continue  # a job in flight is writing it
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)
                            removed += 1
        return removed


def find_ffmpeg() -> str | None:
    return shutil.which("ffmpeg")
