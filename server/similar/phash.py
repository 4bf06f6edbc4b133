"""The perceptual hash of an image: 64 bits that stay close when a picture is resized,
re-encoded, converted, stripped of EXIF, lightly cropped or watermarked.

Runs in the scan's worker processes (Pillow + numpy, no aiohttp). The hash is a DCT pHash:
the picture as gray, shrunk to 32×32, its 2-D DCT (a precomputed DCT matrix, two small matrix
products), and one bit per low-frequency coefficient: the 64 lowest AC coefficients in
zig-zag order (the DC term, plain brightness, is left out), set when above their median.
Leaving out DC makes the hash blind to uniform brightness and contrast changes, and the
median split gives every hash 32 ones, so hashes of unrelated pictures sit tightly around
distance 32: in our experiment (procedural scenes) unrelated pictures stayed farther apart
than with a dHash (standard deviation 4.1 against 5.2 bits; no pair within 12 among 245,000,
against 17), at nearly its robustness to the edits above (dHash did better on large text
overlays and crops on all sides). It is our own code rather than `imagehash` because
imagehash decodes the whole picture: on 2-3 MP JPEGs that alone is ~5x slower than the
1/8-scale luma decode below. Any change to how the bits come out must change `HASH_NAME`
(the perceptual cache discards hashes of another name).

Speed: a JPEG is decoded at 1/8 scale and only its luma (`Image.draft`), which makes a
2-3 MP photo a ~250×190 gray picture for the price of its entropy decoding; other formats
are decoded whole and shrunk by `reduce()` steps before the final Lanczos. At 1/8 scale a
JPEG block is its DC coefficient alone, so a progressive JPEG is decoded from its DC scans
only (`progressive_dc_scans`): its AC scans are most of the file and most of the time.

The EXIF orientation tag is honoured (a copy rotated on disk and tagged to display upright
hashes like the upright original; `width`/`height` are the size as displayed). It is applied
to the 32×32 sample, which is the same as applying it to the picture and costs nothing.
Transparent pixels are composited on white; 16-bit and 32-bit gray are scaled as the
thumbnails scale them; an animated GIF or WebP is hashed by its first frame. A file Pillow
cannot decode (truncated, corrupt, empty, not an image) or that is larger than Pillow's
decompression-bomb limit gives None, never an exception.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass
from typing import IO

import numpy as np
import numpy.typing as npt
from PIL import Image

from server.archives.pixels import eight_bit
from server.library import FOLDER_FLAGS
from server.scan import hashing

HASH_BITS = 64
HASH_NAME = "dct64-v1"  # DCT of a 32×32 gray sample, 64 zig-zag AC coefficients against their median
# Near-copies come out at 0-4 bits (resize, re-encode, format, EXIF, small text), 2-14 for a
# 5 % crop of one side, 6-20 for 5 % off two sides; other shots of one scene and unrelated
# pictures >= 18 (burst-like shots, 3-5 % apart, 4-20: as alike as a crop). 8: the near-copy
# benchmark's goals met (precision 1.000, recall 0.996) and a million hashes grouped in ~5 s;
# at 10 recall is 1.000 but that grouping takes ~12 s (README, "Similar images").
DEFAULT_THRESHOLD = 8
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif"}
)  # the contract's list, and AVIF (a library image type) where Pillow can read it

SAMPLE_SIZE = 32  # side of the gray sample the DCT is taken of
_DCT_ROWS = 12  # frequencies 0..11 per axis hold the 64 lowest zig-zag AC coefficients
_ORIENTATION_TAG = 0x0112
# The formats tried, by Pillow's names (a misnamed file is still recognised; anything else is
# not an image). JPEG covers MPO, a phone's multi-picture JPEG; AVIF only where Pillow has it.
_WANTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_MAX_JPEG_BYTES = 64 * 1024 * 1024  # larger JPEGs are left to Pillow as they are, unread by us
# A marker that ends a scan's entropy-coded data: 0xFF then neither a stuffed 0x00, a fill
# 0xFF nor a restart marker (0xD0-0xD7, which belong to the scan).
_END_OF_SCAN = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]")

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ImageInfo:
    phash: int  # 64-bit unsigned perceptual hash
    width: int  # full-size pixel dimensions as displayed (EXIF orientation applied), not the draft size
    height: int
    format: str  # Pillow's format name: "JPEG", "PNG", "WEBP", ...


def _dct_matrix(size: int, rows: int) -> FloatArray:
    """The first `rows` rows of the orthonormal DCT-II matrix of order `size`."""
    frequency = np.arange(rows, dtype=np.float64)[:, None]
    position = np.arange(size, dtype=np.float64)[None, :]
    matrix: FloatArray = np.cos(np.pi * (2 * position + 1) * frequency / (2 * size)) * np.sqrt(2 / size)
    matrix[0] /= np.sqrt(2)
    return matrix


def _zigzag_cells(count: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(row, column) indexes of the `count` lowest-frequency AC coefficients in zig-zag order."""
    cells = sorted(
        ((row, column) for row in range(_DCT_ROWS) for column in range(_DCT_ROWS)),
        key=lambda cell: (cell[0] + cell[1], cell[0] if (cell[0] + cell[1]) % 2 else cell[1]),
    )[1 : count + 1]  # [0] is DC
    return np.array([row for row, _ in cells], dtype=np.intp), np.array([column for _, column in cells], dtype=np.intp)


_DCT = _dct_matrix(SAMPLE_SIZE, _DCT_ROWS)
_DCT_T = np.ascontiguousarray(_DCT.T)
_CELLS = _zigzag_cells(HASH_BITS)


def _formats() -> tuple[str, ...]:
    Image.init()
    return tuple(name for name in _WANTED_FORMATS if name in Image.OPEN)


_FORMATS = _formats()


def distance(a: int, b: int) -> int:
    """Hamming distance between two hashes."""
    return (a ^ b).bit_count()


def hash_of_sample(sample: FloatArray) -> int:
    """The hash of a SAMPLE_SIZE×SAMPLE_SIZE gray sample (any scale of values)."""
    coefficients = _DCT @ sample @ _DCT_T
    # rounding drops float noise, so a flat picture (every AC coefficient 0) hashes to 0
    values = np.round(coefficients[_CELLS], 6)
    bits = values > np.median(values)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def _oriented(sample: FloatArray, orientation: int) -> FloatArray:
    """`sample` as displayed under an EXIF orientation (what `ImageOps.exif_transpose` does)."""
    match orientation:
        case 2:
            return sample[:, ::-1]
        case 3:
            return sample[::-1, ::-1]
        case 4:
            return sample[::-1, :]
        case 5:
            return sample.T
        case 6:
            return np.rot90(sample, -1)
        case 7:
            return sample[::-1, ::-1].T
        case 8:
            return np.rot90(sample, 1)
        case _:
            return sample


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8); 1 when there is none or the EXIF block is unreadable."""
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block does not make the picture unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _gray_sample(image: Image.Image) -> FloatArray:
    """The loaded `image` as a SAMPLE_SIZE² gray sample, transparency composited on white."""
    image = eight_bit(image)  # 16/32-bit gray: scaled by the range used, not clipped to white
    size = (SAMPLE_SIZE, SAMPLE_SIZE)
    resample = Image.Resampling.LANCZOS
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        # shrunk with its alpha (Pillow premultiplies), then composited on white
        with_alpha = image if image.mode == "LA" else image.convert("RGBA").convert("LA")
        small = np.asarray(with_alpha.resize(size, resample, reducing_gap=2.0), dtype=np.float64)
        alpha = small[:, :, 1] / 255.0
        return small[:, :, 0] * alpha + 255.0 * (1.0 - alpha)
    gray = image if image.mode == "L" else image.convert("L")
    return np.asarray(gray.resize(size, resample, reducing_gap=2.0), dtype=np.float64)


def _hash_open(image: Image.Image) -> ImageInfo:
    width, height = image.size  # before draft() shrinks it
    format_name = image.format or ""
    if format_name in _JPEG_FORMATS:
        image.draft("L", (SAMPLE_SIZE, SAMPLE_SIZE))
    image.load()  # the first frame of an animation
    orientation = _orientation(image)
    if orientation >= 5:  # a quarter turn: displayed with width and height swapped
        width, height = height, width
    sample = _oriented(_gray_sample(image), orientation)
    return ImageInfo(hash_of_sample(sample), width, height, format_name)


def progressive_dc_scans(data: bytes) -> bytes | None:
    """A whole progressive JPEG reduced to its DC scans, or None for any other data.

    What is left is a valid progressive JPEG (every segment kept, the AC scans dropped) whose
    blocks are flat: decoded at 1/8 scale it gives the picture the whole file gives, give or
    take the decoder's block smoothing. None also for a file that does not parse to its
    end-of-image marker (a truncated file is not a whole image, as for Pillow).
    """
    if not data.startswith(b"\xff\xd8"):
        return None
    kept = [data[:2]]
    position, end_of_data, progressive = 2, len(data), False
    while position + 2 <= end_of_data:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xD9:  # end of image
            kept.append(data[position : position + 2])
            return b"".join(kept) if progressive else None
        if position + 4 > end_of_data:
            return None
        segment_end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if segment_end > end_of_data:
            return None
        if marker == 0xC2:  # start of frame, progressive Huffman
            progressive = True
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return None  # another kind of frame (baseline, lossless, arithmetic): keep it whole
        if marker == 0xDA:  # start of scan: header, then entropy-coded data up to the next marker
            if not progressive or segment_end < position + 6:
                return None
            spectral_start_at = position + 5 + 2 * data[position + 4]  # after the component list
            end_of_scan = _END_OF_SCAN.search(data, segment_end)
            if spectral_start_at >= segment_end or end_of_scan is None:
                return None
            if data[spectral_start_at] == 0:  # a DC scan (first pass or refinement)
                kept.append(data[position : end_of_scan.start()])
            position = end_of_scan.start()
            continue
        kept.append(data[position:segment_end])
        position = segment_end
    return None


def _decodable(stream: IO[bytes]) -> IO[bytes]:
    """What Pillow should decode: a progressive JPEG's DC scans, or the stream itself."""
    if stream.read(2) != b"\xff\xd8":
        stream.seek(0)
        return stream
    stream.seek(0)
    data = stream.read(_MAX_JPEG_BYTES + 1)
    if len(data) > _MAX_JPEG_BYTES:
        stream.seek(0)
        return stream
    return io.BytesIO(progressive_dc_scans(data) or data)


def hash_stream(stream: IO[bytes]) -> ImageInfo | None:
    """The hash of the image in an open, seekable binary file; None when it is not a
    decodable image (never raises for a bad file)."""
    try:
        with warnings.catch_warnings():
            # over Pillow's limit (MAX_IMAGE_PIXELS) is a bomb here, not a warning
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(_decodable(stream), formats=_FORMATS) as image:
                return _hash_open(image)
    except Exception:  # a hostile or broken file can make a decoder raise nearly anything
        return None


def hash_image(path: str) -> ImageInfo | None:
    """The hash of the image at `path`; None when it cannot be read or decoded."""
    try:
        with open(path, "rb") as stream:
            return hash_stream(stream)
    except OSError:
        return None


def hash_images(root: str, rel_paths: list[str]) -> list[ImageInfo | None]:
    """Worker task: the hashes of files given relative to `root`, in order (None: not an image).

    Files are opened as the duplicate scan opens them (`server.scan.hashing`: relative to an
    open root descriptor, of paths its walk found) and the scan's shared cancel flag is checked
    between files (raising `hashing.ScanCancelled`).
    """
    results: list[ImageInfo | None] = []
    root_fd = os.open(root, FOLDER_FLAGS)
    files = hashing.OpenFiles(root_fd)  # keeps nothing open: each file is closed after use
    try:
        for relative in rel_paths:
            hashing.check_cancel()
            try:
                fd = files.get(relative)
            except OSError:
                results.append(None)
                continue
            try:
                with open(fd, "rb", closefd=False) as stream:
                    results.append(hash_stream(stream))
            finally:
                files.release(relative, fd)
    finally:
        files.close_all()
        os.close(root_fd)
    return results
