"""Archive plans: parts of known length, CRC-32 jobs and their cache, rendering to bytes."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

try:  # zlib's CRC-32 and deflate, from ISA-L: CRC ~10× faster (PCLMULQDQ), deflate several times
    from isal.isal_zlib import compress, crc32

    FLATE_LEVEL = 2  # ISA-L's levels are 0..3
    DEFLATE = "isal"
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the portable fallback
    from zlib import compress, crc32

    FLATE_LEVEL = 6
    DEFLATE = "zlib"

__all__ = ["DEFLATE", "FLATE_LEVEL", "compress", "crc32"]  # the pdf writer deflates with the same library

# Part of every cache key: archives are byte-for-byte reproducible only for the same writer
# (change it whenever the bytes written for the same files change) and the same deflate.
FORMAT_VERSION = f"5-{DEFLATE}"  # 5: high-bit-depth images scaled to 8 bits, not clipped

CRC_READ = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileSpan:
    """`length` bytes of the file at `path`, from `offset`."""

    path: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Deferred:
    """Bytes of a known length that can only be rendered once CRCs 0..needs-1 are known."""

    needs: int
    length: int
    render: Callable[[Sequence[int]], bytes]


Part = bytes | FileSpan | Deferred


def part_length(part: Part) -> int:
    return len(part) if isinstance(part, bytes) else part.length


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What makes a cached CRC still valid for a file."""

    path: str
    size: int
    mtime_ns: int
    inode: int


@dataclass(slots=True)
class CrcJob:
    """The content of one ZIP entry, whose CRC-32 a data descriptor needs."""

    parts: tuple[Part, ...]
    identity: FileIdentity | None = None  # set when the entry is exactly one whole file


@dataclass(slots=True)
class ArchivePlan:
    parts: list[Part]
    size: int
    content_type: str
    crc_jobs: list[CrcJob] = field(default_factory=list)
    spool: str | None = None  # a temp file the plan's spans point into; the owner deletes it


class CrcCache:
    """CRC-32 of whole files keyed by path, size, mtime and inode (a bounded LRU, thread-safe)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._values: OrderedDict[FileIdentity, int] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, identity: FileIdentity) -> int | None:
        with self._lock:
            value = self._values.get(identity)
            if value is not None:
                self._values.move_to_end(identity)
            return value

    def put(self, identity: FileIdentity, value: int) -> None:
        with self._lock:
            self._values[identity] = value
            self._values.move_to_end(identity)
            while len(self._values) > self._max:
                self._values.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


class ArchiveSourceChanged(Exception):
    """A file changed size while its archive was being written (the archive is unusable)."""


def span_crc(span: FileSpan, crc: int = 0, buffer: bytearray | None = None) -> int:
    """CRC-32 of a file region (ISA-L's folded CRC when installed: ~10× zlib's speed)."""
    buf = buffer if buffer is not None else bytearray(CRC_READ)
    view = memoryview(buf)
    remaining = span.length
    with open(span.path, "rb", buffering=0) as handle:
        handle.seek(span.offset)
        while remaining > 0:
            count = handle.readinto(view[: min(len(buf), remaining)])
            if not count:
                raise ArchiveSourceChanged(f"{span.path} is shorter than planned")
            crc = crc32(view[:count], crc)
            remaining -= count
    return crc


def crc_buffer(jobs: Iterable[CrcJob]) -> bytearray:
    """A buffer to read the file regions of `jobs` into: no larger than the largest region
    (a small file's CRC zeroes no megabyte), nor than CRC_READ."""
    largest = max((part.length for job in jobs for part in job.parts if isinstance(part, FileSpan)), default=1)
    return bytearray(min(CRC_READ, max(largest, 1)))


def job_crc(job: CrcJob, cache: CrcCache | None = None, buffer: bytearray | None = None) -> int:
    """The CRC-32 of one entry's content (blocking: run it in a thread); `buffer`: one to read
    into, reused from job to job (a fresh megabyte per file costs its page faults every time)."""
    if job.identity is not None and cache is not None:
        known = cache.get(job.identity)
        if known is not None:
            return known
    crc = 0
    if buffer is None:
        buffer = crc_buffer((job,))
    for part in job.parts:
        if isinstance(part, bytes):
            crc = crc32(part, crc)
        elif isinstance(part, FileSpan):
            crc = span_crc(part, crc, buffer)
        else:
            raise TypeError("an entry's content cannot hold deferred parts")
    if job.identity is not None and cache is not None:
        cache.put(job.identity, crc)
    return crc


def render_bytes(plan: ArchivePlan, cache: CrcCache | None = None) -> bytearray:
    """The whole archive in one buffer of its exact size, read straight into place (blocking)."""
    out = bytearray(plan.size)
    view = memoryview(out)
    position = 0
    crcs: list[int] = []
    written: dict[int, int] = {}  # id of a file region in the plan -> where its bytes are in `out`
    for part in plan.parts:
        if isinstance(part, Deferred):
            while len(crcs) < part.needs:
                crcs.append(_written_crc(plan.crc_jobs[len(crcs)], view, written, cache))
            part = part.render(crcs)
        if isinstance(part, bytes):
            view[position : position + len(part)] = part
            position += len(part)
            continue
        written[id(part)] = position
        with open(part.path, "rb", buffering=0) as handle:
            read_span(handle, part, view[position : position + part.length])
        position += part.length
    if position != plan.size:
        raise ArchiveSourceChanged("the archive came out at a different size than planned")
    return out


def read_span(handle: io.FileIO, span: FileSpan, into: memoryview) -> None:
    """The region's bytes from `handle` (its file, open) into `into`, exactly (blocking); a file
    now shorter than planned: `ArchiveSourceChanged`."""
    handle.seek(span.offset)
    position = 0
    while position < span.length:
        count = handle.readinto(into[position : span.length])
        if not count:
            raise ArchiveSourceChanged(f"{span.path} is shorter than planned")
        position += count


def _written_crc(job: CrcJob, view: memoryview, written: dict[int, int], cache: CrcCache | None) -> int:
    """A job's CRC from the bytes already read into the archive (each file read once), or by
    `job_crc` when some of its content is not there."""
    if not all(isinstance(part, FileSpan) and id(part) in written for part in job.parts):
        return job_crc(job, cache)
    crc = 0
    for part in job.parts:
        assert isinstance(part, FileSpan)
        start = written[id(part)]
        crc = crc32(view[start : start + part.length], crc)
    if job.identity is not None and cache is not None:
        cache.put(job.identity, crc)
    return crc
