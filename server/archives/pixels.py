"""High-bit-depth images (16-bit scans, 32-bit integer and float TIFFs) scaled to 8 bits.

Pillow clips such modes to white when it converts them; PDFs and thumbnails both need 8-bit
pixels that keep the source's tones.
"""

from __future__ import annotations

from PIL import Image


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
