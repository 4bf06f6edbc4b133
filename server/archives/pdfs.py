"""PDFs as plans: one image per page, JPEG passed through, other images stored losslessly."""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image

from server.archives.pixels import eight_bit
from server.archives.plans import FLATE_LEVEL, ArchivePlan, FileSpan, Part, compress, part_length
from server.archives.zips import ZipEntry

PDF_DPI = 96  # pixels per inch when an image says nothing: page size = pixels * 72 / 96 points


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
