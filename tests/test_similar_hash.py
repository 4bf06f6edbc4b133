"""The perceptual hash: near-copies close, unrelated pictures far, awkward files handled,
bad files None (never an exception), and the worker entry point's order and cancel."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from server.scan import hashing
from server.similar import phash
from server.similar.phash import DEFAULT_THRESHOLD, ImageInfo, distance, hash_image, hash_images

ORIENTATION = 0x0112


def scene(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A natural-looking picture: smooth colour noise over several scales, shapes, sensor noise."""
    rng = np.random.default_rng(seed)
    width, height = size
    pixels = np.zeros((height, width, 3), np.float32)
    scale, amplitude = 256, 40.0
    while scale >= 4:
        cols, rows = width // scale + 2, height // scale + 2
        for channel in range(3):
            grid = Image.fromarray(rng.standard_normal((rows, cols)).astype(np.float32), "F")
            layer = np.asarray(grid.resize((cols * scale, rows * scale), Image.Resampling.BICUBIC))
            pixels[:, :, channel] += amplitude * layer[:height, :width]
        scale //= 2
        amplitude *= 0.55
    image = Image.fromarray(np.clip(pixels + rng.uniform(70, 180, 3), 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x, y, radius = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.04, 0.25) * width
        colour = tuple(int(value) for value in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse([x - radius, y - radius * 0.7, x + radius, y + radius * 0.7], fill=colour)
        else:
            draw.rectangle([x - radius, y - radius / 2, x + radius * 0.8, y + radius], fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(1))
    noisy = np.asarray(image, np.float32) + rng.normal(0, 3, (height, width, 3)).astype(np.float32)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def encoded(image: Image.Image, format_name: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format_name, **options)
    return buffer.getvalue()


def save(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def info_of(tmp_path: Path, name: str, data: bytes) -> ImageInfo:
    info = hash_image(save(tmp_path / name, data))
    assert info is not None, name
    return info


def with_text(image: Image.Image) -> Image.Image:
    marked = image.copy()
    draw = ImageDraw.Draw(marked)
    draw.text((20, marked.height - 40), "@some_artist", fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    return marked


def camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    exif[0x0110] = "Camera model"
    return exif


def near_copies(image: Image.Image) -> dict[str, bytes]:
    width, height = image.size
    return {
        "resized 50 %": encoded(image.resize((width // 2, height // 2), Image.Resampling.LANCZOS), "JPEG", quality=90),
        "resized 200 %": encoded(image.resize((width * 2, height * 2), Image.Resampling.BICUBIC), "JPEG", quality=90),
        "JPEG q60": encoded(image, "JPEG", quality=60),
        "JPEG q95": encoded(image, "JPEG", quality=95),
        "WebP": encoded(image, "WEBP", quality=80),
        "PNG": encoded(image, "PNG"),
        "EXIF stripped": encoded(image, "JPEG", quality=88),
        "cropped 3 %": encoded(image.crop((width * 3 // 100, 0, width, height)), "JPEG", quality=90),
        "text overlay": encoded(with_text(image), "JPEG", quality=90),
    }


def test_near_copies_are_close_and_unrelated_pictures_far(tmp_path: Path) -> None:
    originals: list[int] = []
    for seed in range(3):
        image = scene(seed)
        original = info_of(tmp_path, f"{seed}.jpg", encoded(image, "JPEG", quality=92, exif=camera_exif()))
        assert (original.width, original.height, original.format) == (640, 480, "JPEG")
        originals.append(original.phash)
        for kind, data in near_copies(image).items():
            copy = info_of(tmp_path, f"{seed}-copy", data)
            assert distance(original.phash, copy.phash) <= DEFAULT_THRESHOLD, (seed, kind)
    for first in range(3):
        for second in range(first + 1, 3):
            assert distance(originals[first], originals[second]) > 2 * DEFAULT_THRESHOLD


def test_width_and_height_are_the_full_size_and_formats_are_named(tmp_path: Path) -> None:
    image = scene(4, (1200, 900))  # large enough for the JPEG to be decoded at 1/8 scale
    for name, format_name in (("a.jpg", "JPEG"), ("a.png", "PNG"), ("a.webp", "WEBP"), ("a.gif", "GIF")):
        info = info_of(tmp_path, name, encoded(image, format_name))
        assert (info.width, info.height, info.format) == (1200, 900, format_name)
    misnamed = info_of(tmp_path, "really-a-png.jpg", encoded(image, "PNG"))
    assert misnamed.format == "PNG"


@pytest.mark.parametrize("orientation", range(2, 9))
def test_a_copy_tagged_with_an_exif_orientation_hashes_like_the_picture_it_displays(
    tmp_path: Path, orientation: int
) -> None:
    upright = scene(5, (480, 320))
    # Stored pixels that the tag turns back into `upright` (each transform's inverse).
    inverse = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    stored = encoded(upright.transpose(inverse), "PNG", exif=exif)
    with Image.open(io.BytesIO(stored)) as check:  # the fixture is right: Pillow displays it upright
        assert np.array_equal(np.asarray(ImageOps.exif_transpose(check)), np.asarray(upright))
    tagged = info_of(tmp_path, "tagged.png", stored)
    plain = info_of(tmp_path, "upright.png", encoded(upright, "PNG"))
    assert (tagged.width, tagged.height) == (480, 320)
    assert distance(tagged.phash, plain.phash) <= 2
    untagged = info_of(tmp_path, "untagged.png", encoded(upright.transpose(inverse), "PNG"))
    assert distance(untagged.phash, plain.phash) > DEFAULT_THRESHOLD  # the tag is what makes them alike


def test_a_progressive_jpeg_is_hashed_from_its_dc_scans_like_a_baseline_one(tmp_path: Path) -> None:
    image = scene(6, (1024, 768))
    baseline = encoded(image, "JPEG", quality=90)
    progressive = encoded(image, "JPEG", quality=90, progressive=True)
    assert phash.progressive_dc_scans(baseline) is None
    dc_only = phash.progressive_dc_scans(progressive)
    assert dc_only is not None and len(dc_only) < len(progressive) / 3
    with Image.open(io.BytesIO(dc_only)) as reduced:
        reduced.load()
        assert reduced.size == (1024, 768)
    first = info_of(tmp_path, "baseline.jpg", baseline)
    second = info_of(tmp_path, "progressive.jpg", progressive)
    assert (second.width, second.height, second.format) == (1024, 768, "JPEG")
    assert distance(first.phash, second.phash) <= 2
    # A progressive file cut short is not whole, even though its DC scans are all there.
    assert phash.progressive_dc_scans(progressive[: len(progressive) - 100]) is None
    assert hash_image(save(tmp_path / "cut.jpg", progressive[: len(progressive) - 100])) is None


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path: Path) -> None:
    gray = scene(7).convert("L")
    wide = Image.fromarray(np.asarray(gray).astype(np.uint16) * 257)  # 16-bit gray (I;16)
    data = encoded(wide, "PNG")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode.startswith("I")
    sixteen = info_of(tmp_path, "16.png", data)
    eight = info_of(tmp_path, "8.png", encoded(gray, "PNG"))
    assert sixteen.phash != 0  # clipped to white it would be flat
    assert distance(sixteen.phash, eight.phash) <= 2


def test_cmyk_jpeg_hashes_like_its_rgb_picture(tmp_path: Path) -> None:
    image = scene(8)
    cmyk = info_of(tmp_path, "cmyk.jpg", encoded(image.convert("CMYK"), "JPEG", quality=92))
    rgb = info_of(tmp_path, "rgb.jpg", encoded(image, "JPEG", quality=92))
    assert (cmyk.width, cmyk.height) == (640, 480)
    assert distance(cmyk.phash, rgb.phash) <= 4


def test_transparency_is_composited_on_white(tmp_path: Path) -> None:
    image = scene(9)
    alpha = Image.new("L", image.size, 255)
    ImageDraw.Draw(alpha).ellipse([100, 80, 500, 400], fill=0)  # a transparent hole
    rgba = image.copy()
    rgba.putalpha(alpha)
    on_white = Image.new("RGB", image.size, (255, 255, 255))
    on_white.paste(image, mask=alpha)
    expected = info_of(tmp_path, "white.png", encoded(on_white, "PNG")).phash
    assert distance(info_of(tmp_path, "rgba.png", encoded(rgba, "PNG")).phash, expected) <= 2
    # a palette picture with a transparent index (as GIFs and small PNGs have)
    palette = on_white.quantize(64)
    white_index = palette.getpixel((300, 240))
    assert isinstance(white_index, int)
    palette_png = encoded(palette, "PNG", transparency=white_index)
    assert distance(info_of(tmp_path, "p.png", palette_png).phash, expected) <= 4
    # the hole really matters: the same picture without it is another hash
    assert distance(info_of(tmp_path, "full.png", encoded(image, "PNG")).phash, expected) > 2


@pytest.mark.parametrize("format_name", ["GIF", "WEBP"])
def test_an_animation_is_hashed_by_its_first_frame(tmp_path: Path, format_name: str) -> None:
    first, second = scene(10), scene(11)
    data = encoded(first, format_name, save_all=True, append_images=[second], duration=100, loop=0)
    with Image.open(io.BytesIO(data)) as check:
        assert getattr(check, "n_frames", 1) == 2
    animated = info_of(tmp_path, f"anim.{format_name.lower()}", data)
    assert animated.format == format_name
    alone = info_of(tmp_path, "first.png", encoded(first, "PNG")).phash
    other = info_of(tmp_path, "second.png", encoded(second, "PNG")).phash
    assert distance(animated.phash, alone) <= 4 < DEFAULT_THRESHOLD < distance(animated.phash, other)


def test_files_that_are_not_whole_images_give_none(tmp_path: Path) -> None:
    jpeg = encoded(scene(12), "JPEG", quality=90)
    png = encoded(scene(12), "PNG")
    bad = {
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) // 2],
        "header-only.png": png[:40],
        "noise.jpg": np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "text.png": b"this is not an image\n" * 10,
        "jpeg-garbage.jpg": b"\xff\xd8\xff\xe0" + b"\x00" * 100,
    }
    for name, data in bad.items():
        assert hash_image(save(tmp_path / name, data)) is None, name
    assert hash_image(str(tmp_path / "missing.jpg")) is None
    assert hash_image(str(tmp_path)) is None  # a folder


def test_decompression_bombs_give_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path / "big.png", encoded(scene(13, (200, 100)), "PNG"))
    assert hash_image(path) is not None
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 15_000)  # 20,000 pixels: over the limit (Pillow warns)
    assert hash_image(path) is None
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)  # over twice the limit (Pillow refuses)
    assert hash_image(path) is None


def test_a_flat_picture_hashes_to_zero_whatever_its_colour(tmp_path: Path) -> None:
    for colour in ((0, 0, 0), (200, 30, 90), (255, 255, 255)):
        flat = Image.new("RGB", (300, 200), colour)
        assert info_of(tmp_path, "flat.png", encoded(flat, "PNG")).phash == 0


def test_distance_counts_differing_bits() -> None:
    assert distance(0, 0) == 0
    assert distance(0, (1 << 64) - 1) == 64
    assert distance(0b1011, 0b0110) == 3


def test_hash_images_keeps_order_and_gives_none_for_what_it_cannot_hash(tmp_path: Path) -> None:
    folder = tmp_path / "site" / "model"
    folder.mkdir(parents=True)
    save(folder / "a.jpg", encoded(scene(14), "JPEG", quality=90))
    save(folder / "b.png", encoded(scene(15), "PNG"))
    save(folder / "c.jpg", b"not an image")
    names = ["site/model/b.png", "site/model/missing.jpg", "site/model/c.jpg", "site/model/a.jpg"]
    results = hash_images(str(tmp_path), names)
    assert [None if info is None else info.format for info in results] == ["PNG", None, None, "JPEG"]
    assert results[0] == hash_image(str(folder / "b.png"))
    assert results[3] == hash_image(str(folder / "a.jpg"))


def test_hash_images_stops_when_the_scan_is_cancelled(tmp_path: Path) -> None:
    save(tmp_path / "a.jpg", encoded(scene(16), "JPEG"))
    cancel = threading.Event()
    hashing.init_worker(cancel)
    try:
        assert hash_images(str(tmp_path), ["a.jpg"])[0] is not None
        cancel.set()
        with pytest.raises(hashing.ScanCancelled):
            hash_images(str(tmp_path), ["a.jpg"])
    finally:
        hashing.init_worker(None)
