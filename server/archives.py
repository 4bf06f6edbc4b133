"""Archive plans: ZIP, PDF and ZIP-of-PDFs as exact-size sequences of parts (no aiohttp).

A plan is the archive written down before any byte is sent: small header byte strings
interleaved with `FileSpan`s (a region of a file on disk, sent with sendfile and copied into
the cache with copy_file_range) and `Deferred` parts (ZIP data descriptors and the central
directory, whose bytes need CRC-32s that are computed while the file bytes are already on
their way). Every part's length is known up front, so the archive's size is exact before the
first byte. The same plan renders the same bytes whichever way it is consumed (`render_bytes`
for in-memory builds and tests, or part by part by the streaming sender).

ZIP: entries are stored (no compression), flag bit 3 (CRC in a data descriptor after the data,
sizes also in the local header), UTF-8 names, zip64 structures whenever a size, offset or count
overflows (or when forced, for tests). PDF: one image per page; JPEGs are passed through
byte for byte (DCTDecode), other images are decoded once and stored losslessly (FlateDecode,
alpha as a soft mask) into a spool file, so the PDF too is a plan of bytes and file spans.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from PIL import Image

try:  # zlib's CRC-32 and deflate, from ISA-L: CRC ~10× faster (PCLMULQDQ), deflate several times
    from isal.isal_zlib import compress, crc32

    FLATE_LEVEL = 2  # ISA-L's levels are 0..3
    DEFLATE = "isal"
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the portable fallback
    from zlib import compress, crc32

    FLATE_LEVEL = 6
    DEFLATE = "zlib"

# Part of every cache key: archives are byte-for-byte reproducible only for the same writer
# (change it whenever the bytes written for the same files change) and the same deflate.
FORMAT_VERSION = f"5-{DEFLATE}"  # 5: high-bit-depth images scaled to 8 bits, not clipped

CRC_READ = 1024 * 1024
ZIP_LIMIT = 0xFFFFFFFF
ZIP_COUNT_LIMIT = 0xFFFF
PDF_DPI = 96  # pixels per inch when an image says nothing: page size = pixels * 72 / 96 points


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


def job_crc(job: CrcJob, cache: CrcCache | None = None) -> int:
    """The CRC-32 of one entry's content (blocking: run it in a thread)."""
    if job.identity is not None and cache is not None:
        known = cache.get(job.identity)
        if known is not None:
            return known
    crc = 0
    buffer = bytearray(CRC_READ)
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
    for part in plan.parts:
        if isinstance(part, Deferred):
            while len(crcs) < part.needs:
                crcs.append(job_crc(plan.crc_jobs[len(crcs)], cache))
            part = part.render(crcs)
        if isinstance(part, bytes):
            view[position : position + len(part)] = part
            position += len(part)
            continue
        with open(part.path, "rb", buffering=0) as handle:
            handle.seek(part.offset)
            end = position + part.length
            while position < end:
                count = handle.readinto(view[position:end])
                if not count:
                    raise ArchiveSourceChanged(f"{part.path} is shorter than planned")
                position += count
    if position != plan.size:
        raise ArchiveSourceChanged("the archive came out at a different size than planned")
    return out


# -- ZIP ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One stored member: its name in the archive, its content and modification time."""

    name: str
    size: int
    mtime: float
    parts: tuple[Part, ...]
    identity: FileIdentity | None = None


def file_entry(name: str, path: str) -> ZipEntry:
    """A ZIP member holding one whole file (stat now: the plan uses its exact size)."""
    info = os.stat(path)
    identity = FileIdentity(path, info.st_size, info.st_mtime_ns, info.st_ino)
    return ZipEntry(name, info.st_size, info.st_mtime, (FileSpan(path, 0, info.st_size),), identity)


def _dos_datetime(mtime: float) -> tuple[int, int]:
    t = time.gmtime(max(mtime, 315532800))  # DOS dates start in 1980
    year = min(t.tm_year, 2107)
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), ((year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday


@dataclass(frozen=True, slots=True)
class _Placed:
    entry: ZipEntry
    name: bytes
    offset: int
    zip64: bool  # sizes need zip64 (local extra, 8-byte descriptor)
    dos_time: int
    dos_date: int


_FLAGS = 0x0808  # bit 3: data descriptor; bit 11: UTF-8 names
_MADE_BY = (3 << 8) | 45  # Unix, spec 4.5
_EXTERNAL_ATTR = (0o100644 << 16) & 0xFFFFFFFF


def _timestamp(p: _Placed) -> bytes:
    """The "UT" extra field: the exact mtime in UTC, so unzip restores it whatever the time zone
    (the DOS date and time fields hold the same moment in UTC, to keep archives deterministic)."""
    return struct.pack("<HHBI", 0x5455, 5, 1, min(max(int(p.entry.mtime), 0), 0xFFFFFFFF))


def _local_header(p: _Placed) -> bytes:
    size = p.entry.size
    extra = (struct.pack("<HHQQ", 1, 16, size, size) if p.zip64 else b"") + _timestamp(p)
    stored = ZIP_LIMIT if p.zip64 else size
    header = struct.pack(
        "<IHHHHHIIIHH",
        0x04034B50,
        45 if p.zip64 else 20,
        _FLAGS,
        0,
        p.dos_time,
        p.dos_date,
        0,
        stored,
        stored,
        len(p.name),
        len(extra),
    )
    return header + p.name + extra


def _descriptor_length(p: _Placed) -> int:
    return 24 if p.zip64 else 16


def _descriptor(p: _Placed, crc: int) -> bytes:
    if p.zip64:
        return struct.pack("<IIQQ", 0x08074B50, crc, p.entry.size, p.entry.size)
    return struct.pack("<IIII", 0x08074B50, crc, p.entry.size, p.entry.size)


def _descriptor_renderer(p: _Placed, index: int) -> Callable[[Sequence[int]], bytes]:
    def render(crcs: Sequence[int]) -> bytes:
        return _descriptor(p, crcs[index])

    return render


def _central_fields(p: _Placed, force: bool) -> tuple[int, int, bytes]:
    size, offset = p.entry.size, p.offset
    values: list[int] = []
    if force or size >= ZIP_LIMIT:
        values += [size, size]
        size = ZIP_LIMIT
    if force or offset >= ZIP_LIMIT:
        values.append(offset)
        offset = ZIP_LIMIT
    extra = struct.pack(f"<HH{len(values)}Q", 1, 8 * len(values), *values) if values else b""
    return size, offset, extra


def _central_header(p: _Placed, crc: int, force: bool) -> bytes:
    size, offset, zip64_extra = _central_fields(p, force)
    extra = zip64_extra + _timestamp(p)
    header = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        _MADE_BY,
        45 if (p.zip64 or zip64_extra) else 20,
        _FLAGS,
        0,
        p.dos_time,
        p.dos_date,
        crc,
        size,
        size,
        len(p.name),
        len(extra),
        0,
        0,
        0,
        _EXTERNAL_ATTR,
        offset,
    )
    return header + p.name + extra


def _central_length(p: _Placed, force: bool) -> int:
    return 46 + len(p.name) + len(_central_fields(p, force)[2]) + 9


def _end_records(count: int, cd_offset: int, cd_size: int, force: bool) -> bytes:
    zip64 = force or count >= ZIP_COUNT_LIMIT or cd_offset >= ZIP_LIMIT or cd_size >= ZIP_LIMIT
    out = b""
    if zip64:
        eocd64_offset = cd_offset + cd_size
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, _MADE_BY, 45, 0, 0, count, count, cd_size, cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, eocd64_offset, 1)
    out += struct.pack(
        "<IHHHHIIH",
        0x06054B50,
        0,
        0,
        ZIP_COUNT_LIMIT if zip64 else count,
        ZIP_COUNT_LIMIT if zip64 else count,
        ZIP_LIMIT if zip64 else cd_size,
        ZIP_LIMIT if zip64 else cd_offset,
        0,
    )
    return out


def zip_plan(entries: Sequence[ZipEntry], force_zip64: bool = False) -> ArchivePlan:
    """A stored ZIP of `entries`, its exact size known now; CRCs come as the data is sent."""
    parts: list[Part] = []
    jobs: list[CrcJob] = []
    placed: list[_Placed] = []
    offset = 0
    for entry in entries:
        dos_time, dos_date = _dos_datetime(entry.mtime)
        p = _Placed(
            entry, entry.name.encode("utf-8"), offset, force_zip64 or entry.size >= ZIP_LIMIT, dos_time, dos_date
        )
        placed.append(p)
        header = _local_header(p)
        parts.append(header)
        parts.extend(entry.parts)
        index = len(jobs)
        jobs.append(CrcJob(entry.parts, entry.identity))
        parts.append(Deferred(index + 1, _descriptor_length(p), _descriptor_renderer(p, index)))
        offset += len(header) + entry.size + _descriptor_length(p)
    cd_size = sum(_central_length(p, force_zip64) for p in placed)
    tail_length = cd_size + len(_end_records(len(placed), offset, cd_size, force_zip64))
    cd_offset, count = offset, len(placed)

    def central_directory(crcs: Sequence[int]) -> bytes:
        body = b"".join(_central_header(p, crcs[i], force_zip64) for i, p in enumerate(placed))
        return body + _end_records(count, cd_offset, cd_size, force_zip64)

    parts.append(Deferred(len(jobs), tail_length, central_directory))
    return ArchivePlan(parts, offset + tail_length, "application/zip", jobs)


# -- PDF ----------------------------------------------------------------------------------


class NotAnImage(Exception):
    """A file that Pillow cannot read as an image (it is left out of PDFs)."""


@dataclass(frozen=True, slots=True)
class PdfImage:
    """One page's image: its pixel size and the parts of its XObject stream(s)."""

    width: int
    height: int
    dictionary: bytes  # the image XObject's entries except /Length and /SMask
    data: tuple[FileSpan, ...]  # the stream's bytes, in order (a PNG's IDAT chunks are several)
    smask: FileSpan | None = None
    rotate: int = 0  # the page's /Rotate, from a JPEG's EXIF orientation

    @property
    def data_length(self) -> int:
        return sum(span.length for span in self.data)


def probe_jpeg(path: str) -> PdfImage | None:
    """A JPEG's page image, passed through untouched (None when the file is not a JPEG)."""
    try:
        with Image.open(path) as image:
            if image.format != "JPEG":
                return None
            width, height = image.size
            mode = image.mode
            adobe = "adobe" in image.info
            orientation = image.getexif().get(0x0112, 1)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise NotAnImage(path) from None
    colors = {"L": b"/DeviceGray", "RGB": b"/DeviceRGB", "CMYK": b"/DeviceCMYK"}.get(mode)
    if colors is None:
        return None
    decode = b" /Decode [1 0 1 0 1 0 1 0]" if mode == "CMYK" and adobe else b""
    dictionary = b"/ColorSpace %s /BitsPerComponent 8 /Filter /DCTDecode%s" % (colors, decode)
    rotate = _EXIF_ROTATION.get(orientation, 0) if isinstance(orientation, int) else 0
    return PdfImage(width, height, dictionary, (FileSpan(path, 0, os.stat(path).st_size),), rotate=rotate)


# EXIF orientations that are pure rotations -> the page's /Rotate (clockwise), as cameras mean
# them; mirrored orientations (2, 4, 5, 7) are rare and shown unmirrored.
_EXIF_ROTATION = {3: 180, 6: 90, 8: 270}


def _is_high_bit_depth(image: Image.Image) -> bool:
    """One channel of more than 8 bits (16-bit grayscale PNG and TIFF, 32-bit integer or float
    TIFF), which Pillow's own conversions to L or RGB clip to white."""
    return image.mode in ("I", "F") or image.mode.startswith("I;16")


def _value_range(low: float, high: float, integer: bool) -> tuple[float, float]:
    """The values that become 0 and 255. Non-negative integers keep their tones: the full
    range of the bits they really use (at least 8), so a 16-bit scan maps by /257 and a 12-bit
    one stored in 16 bits is not left nearly black; a flat or noisy page is not stretched into
    noise. Floats in 0..1 map from 0..1; anything else (negative values) from its extremes."""
    if integer and low >= 0:
        return 0.0, float(max(255, (1 << int(high).bit_length()) - 1))
    if not integer and low >= 0 and high <= 1:
        return 0.0, 1.0
    return low, high if high > low else low + 1


def eight_bit(image: Image.Image) -> Image.Image:
    """`image` with 8-bit channels: high-bit-depth grayscale scaled down by the range its values
    really use (an `L` image, or `LA` when one value is marked transparent); other images as
    they are (Pillow already reads 16-bit RGB(A) and gray+alpha PNGs as 8-bit, by the high byte)."""
    if not _is_high_bit_depth(image):
        return image
    integer = image.mode != "F"
    values = image.convert("I") if integer else image
    extrema = values.getextrema()
    assert isinstance(extrema[0], (int, float)) and isinstance(extrema[1], (int, float))
    low, high = _value_range(extrema[0], extrema[1], integer)
    scale = 255 / (high - low)
    gray = values.point(lambda value: (value - low) * scale).convert("L")
    transparent = image.info.get("transparency")  # a 16-bit PNG's tRNS: one gray value
    if image.mode.startswith("I;16") and isinstance(transparent, int):
        lookup = [255] * 0x10000
        lookup[transparent & 0xFFFF] = 0
        gray.putalpha(values.point(lookup, "L"))
    return gray


def convert_to_spool(path: str, spool: BinaryIO) -> PdfImage:
    """Decode a non-JPEG image once and append its lossless Flate stream(s) to `spool`."""
    try:
        with Image.open(path) as source:
            source.seek(0)
            source.load()
            image = eight_bit(source)
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            if has_alpha:
                rgba = image.convert("RGBA")
                alpha = rgba.getchannel("A")
                base = rgba.convert("RGB")
            else:
                alpha = None
                base = image.convert("L" if image.mode in ("1", "L") else "RGB")
    except (OSError, ValueError, EOFError, Image.DecompressionBombError):
        raise NotAnImage(path) from None
    colors = b"/DeviceGray" if base.mode == "L" else b"/DeviceRGB"
    dictionary = b"/ColorSpace %s /BitsPerComponent 8 /Filter /FlateDecode" % colors
    data = _spool_write(spool, compress(base.tobytes(), FLATE_LEVEL))
    smask = _spool_write(spool, compress(alpha.tobytes(), FLATE_LEVEL)) if alpha is not None else None
    return PdfImage(base.width, base.height, dictionary, (data,), smask)


def _spool_write(spool: BinaryIO, data: bytes) -> FileSpan:
    offset = spool.seek(0, os.SEEK_END)
    spool.write(data)
    return FileSpan(spool.name if isinstance(spool.name, str) else str(spool.name), offset, len(data))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLORS = {0: (b"/DeviceGray", 1), 2: (b"/DeviceRGB", 3), 3: (None, 1)}


def probe_png(path: str) -> PdfImage | None:
    """A PNG whose compressed pixels a PDF can use as they are (8-bit, not interlaced, no
    transparency): its IDAT chunks become the image stream with PNG predictors, nothing decoded.
    None for any other PNG (it is converted instead)."""
    with open(path, "rb") as handle:
        if handle.read(8) != _PNG_SIGNATURE:
            return None
        width = height = 0
        colors: bytes | None = None
        channels = 0
        palette = b""
        spans: list[FileSpan] = []
        while True:
            head = handle.read(8)
            if len(head) < 8:
                return None
            length, kind = struct.unpack(">I4s", head)
            start = handle.tell()
            if kind == b"IHDR":
                width, height, depth, color_type, _compression, _filter, interlace = struct.unpack(
                    ">IIBBBBB", handle.read(13)
                )
                if depth != 8 or interlace != 0 or color_type not in _PNG_COLORS:
                    return None
                colors, channels = _PNG_COLORS[color_type]
            elif kind == b"PLTE":
                palette = handle.read(length)
            elif kind == b"tRNS":
                return None  # transparency needs a soft mask: decode instead
            elif kind == b"IDAT":
                spans.append(FileSpan(path, start, length))
            elif kind == b"IEND":
                break
            handle.seek(start + length + 4)  # skip the data and the chunk's CRC
    if not spans or not width or not height:
        return None
    if colors is None:
        if not palette or len(palette) % 3:
            return None
        colors = b"[/Indexed /DeviceRGB %d <%s>]" % (len(palette) // 3 - 1, palette.hex().encode("ascii"))
    dictionary = (
        b"/ColorSpace %s /BitsPerComponent 8 /Filter /FlateDecode"
        b" /DecodeParms << /Predictor 15 /Colors %d /BitsPerComponent 8 /Columns %d >>" % (colors, channels, width)
    )
    return PdfImage(width, height, dictionary, tuple(spans))


def pdf_image(path: str, spool: BinaryIO) -> PdfImage:
    """The page image for `path`: JPEG and plain PNG passed through, others converted losslessly."""
    probed = probe_jpeg(path)
    if probed is None:
        try:
            probed = probe_png(path)
        except (OSError, struct.error):
            probed = None
    return probed if probed is not None else convert_to_spool(path, spool)


def pdf_parts(images: Sequence[PdfImage]) -> tuple[list[Part], int]:
    """A PDF with one page per image, as parts whose offsets are all known now."""
    if not images:
        raise ValueError("a PDF needs at least one image")
    parts: list[Part] = []
    offsets: list[int] = []
    position = 0

    def emit(part: Part) -> None:
        nonlocal position
        parts.append(part)
        position += part_length(part)

    def begin(number: int) -> None:
        while len(offsets) < number:
            offsets.append(0)
        offsets[number - 1] = position

    # object numbers: 1 catalog, 2 pages, then per page: page, contents, image[, smask]
    numbers: list[tuple[int, int, int, int | None]] = []
    next_number = 3
    for image in images:
        smask = next_number + 3 if image.smask is not None else None
        numbers.append((next_number, next_number + 1, next_number + 2, smask))
        next_number += 4 if smask is not None else 3
    emit(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    begin(1)
    emit(b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
    begin(2)
    kids = b" ".join(b"%d 0 R" % n[0] for n in numbers)
    emit(b"2 0 obj\n<< /Type /Pages /Kids [%s] /Count %d >>\nendobj\n" % (kids, len(images)))
    for image, (page, contents, xobject, smask) in zip(images, numbers, strict=True):
        width = image.width * 72 / PDF_DPI
        height = image.height * 72 / PDF_DPI
        w, h = _pdf_number(width), _pdf_number(height)
        begin(page)
        rotate = b" /Rotate %d" % image.rotate if image.rotate else b""
        emit(
            b"%d 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s]%s"
            b" /Resources << /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>\nendobj\n"
            % (page, w, h, rotate, xobject, contents)
        )
        stream = b"q %s 0 0 %s 0 0 cm /Im0 Do Q" % (w, h)
        begin(contents)
        emit(b"%d 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (contents, len(stream), stream))
        begin(xobject)
        mask_ref = b" /SMask %d 0 R" % smask if smask is not None else b""
        emit(
            b"%d 0 obj\n<< /Type /XObject /Subtype /Image /Width %d /Height %d %s%s /Length %d >>\nstream\n"
            % (xobject, image.width, image.height, image.dictionary, mask_ref, image.data_length)
        )
        for span in image.data:
            emit(span)
        emit(b"\nendstream\nendobj\n")
        if smask is not None and image.smask is not None:
            begin(smask)
            emit(
                b"%d 0 obj\n<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray"
                b" /BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n"
                % (smask, image.width, image.height, image.smask.length)
            )
            emit(image.smask)
            emit(b"\nendstream\nendobj\n")
    xref_offset = position
    table = b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    emit(b"xref\n0 %d\n0000000000 65535 f \n%s" % (len(offsets) + 1, table))
    emit(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(offsets) + 1, xref_offset))
    return parts, position


def _pdf_number(value: float) -> bytes:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text.encode("ascii")


def pdf_plan(images: Sequence[PdfImage], spool: str | None = None) -> ArchivePlan:
    parts, size = pdf_parts(images)
    return ArchivePlan(parts, size, "application/pdf", [], spool)


def pdf_entry(name: str, images: Sequence[PdfImage], mtime: float) -> ZipEntry:
    """A ZIP member holding one PDF (for pdfs-zip); its CRC is computed over the parts."""
    parts, size = pdf_parts(images)
    return ZipEntry(name, size, mtime, tuple(parts))
