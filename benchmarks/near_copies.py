"""Ground truth for the similar-image finder: a library (site/model/files) of procedurally drawn
pictures, their near-copies and look-alike negatives, and a truth file naming which is which.

Originals are 1-4 MP scenes that look natural to a perceptual hash: a colour gradient, a
multi-scale (1/f) noise field with a film grain, soft-edged shapes (ellipses, rotated boxes,
irregular blobs) that are shaded or striped, and a vignette. They are JPEG (with EXIF) or PNG
(with EXIF), in the first site. Each original gets one copy per edit kind, placed in another
site and model:

- `resize`: 50-200 % (linear), same format, EXIF kept;
- `jpeg`: re-encoded as JPEG at quality 60-95;
- `webp`: re-encoded as WebP at quality 60-95;
- `png`: re-encoded as PNG (lossless);
- `exif_stripped`: the same file without its EXIF (the JPEG's APP1 segment dropped byte for
  byte, or the PNG saved again without it: the pixels are the original's);
- `crop`: at most 5 % taken off each axis, split randomly between the two edges;
- `overlay`: a small caption box or a translucent watermark text.

and two negatives, different pictures that look alike and must NOT be grouped with it:

- `other_view`: the same scene shot again, the frame shifted 15-30 % and some objects moved;
- `other_detail`: the same generator parameters (palette, gradient, style, shape kinds) with
  another detail seed (the noise field and object positions are new).

The truth file (JSON) maps every file, relative to the root, to an entry:
`{"group": id, "kind": kind, "original": id, "negative_of": id | null, "width", "height",
"format", "edit": {...}}`. Files with the same `group` are copies of one picture; a negative is
a group of its own, with `negative_of` naming the original it resembles.

Deterministic for a seed (each original is drawn from its own seeded generator, so `--workers`
does not change the output). `python -m benchmarks.near_copies --root DIR [--originals N]
[--min-mp 1 --max-mp 4] [--seed S] [--workers W] [--force]`.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import shutil
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

TRUTH_VERSION = 1
EDIT_KINDS = ("resize", "jpeg", "webp", "png", "exif_stripped", "crop", "overlay")
NEGATIVE_KINDS = ("other_view", "other_detail")
ORIGINAL = "original"
ALL_KINDS = (ORIGINAL, *EDIT_KINDS, *NEGATIVE_KINDS)
SITES = ("origin.site", "mirror-a", "repost board", "gallery_b")
ASPECTS = ((4, 3), (3, 2), (16, 9), (1, 1), (3, 4), (2, 3), (5, 4))
CANVAS_MARGIN = 1.4  # the scene is drawn this much larger than the frame, for the shifted view
EXIF_MAKE, EXIF_MODEL, EXIF_DATETIME, EXIF_SOFTWARE = 0x010F, 0x0110, 0x0132, 0x0131

Float = npt.NDArray[np.float32]
Pixels = npt.NDArray[np.uint8]
Truth = dict[str, dict[str, Any]]


# -- the scene -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """One object of a scene, in canvas coordinates normalised to 0..1."""

    kind: str  # "ellipse" | "box" | "blob"
    cx: float
    cy: float
    rx: float
    ry: float
    angle: float
    color: tuple[float, float, float]
    softness: float  # edge width as a fraction of the radius
    texture: str  # "flat" | "shaded" | "stripes"
    stripe_frequency: float
    lobes: int
    lobe_phase: float


@dataclass(frozen=True)
class Scene:
    """Everything that decides how a picture looks; `detail_seed` draws its noise field."""

    palette: tuple[tuple[float, float, float], ...]
    gradient_angle: float
    noise_strength: float
    roughness: float  # amplitude ratio between successive octaves (1/f is 0.5)
    grain: float
    vignette: float
    shapes: tuple[Shape, ...]
    detail_seed: int


def _color(rng: random.Random) -> tuple[float, float, float]:
    hue, saturation, value = rng.random(), rng.uniform(0.25, 0.9), rng.uniform(0.25, 0.95)
    sector = int(hue * 6) % 6
    f = hue * 6 - int(hue * 6)
    p, q, t = value * (1 - saturation), value * (1 - f * saturation), value * (1 - (1 - f) * saturation)
    rgb = [(value, t, p), (q, value, p), (p, value, t), (p, q, value), (t, p, value), (value, p, q)][sector]
    return (rgb[0] * 255, rgb[1] * 255, rgb[2] * 255)


def random_shape(rng: random.Random, palette: Sequence[tuple[float, float, float]]) -> Shape:
    base = palette[rng.randrange(len(palette))]
    shift = rng.uniform(-50, 50)
    color = (
        min(255.0, max(0.0, base[0] + shift)),
        min(255.0, max(0.0, base[1] + shift)),
        min(255.0, max(0.0, base[2] + shift)),
    )
    radius = rng.uniform(0.04, 0.2)
    return Shape(
        kind=rng.choice(("ellipse", "box", "blob")),
        cx=rng.uniform(0.05, 0.95),
        cy=rng.uniform(0.05, 0.95),
        rx=radius * rng.uniform(0.6, 1.6),
        ry=radius * rng.uniform(0.6, 1.6),
        angle=rng.uniform(0, math.pi),
        color=color,
        softness=rng.uniform(0.02, 0.25),
        texture=rng.choice(("flat", "shaded", "shaded", "stripes")),
        stripe_frequency=rng.uniform(4, 14),
        lobes=rng.randint(3, 7),
        lobe_phase=rng.uniform(0, 2 * math.pi),
    )


def random_scene(rng: random.Random) -> Scene:
    palette = tuple(_color(rng) for _ in range(rng.randint(3, 5)))
    return Scene(
        palette=palette,
        gradient_angle=rng.uniform(0, 2 * math.pi),
        noise_strength=rng.uniform(25, 60),
        roughness=rng.uniform(0.45, 0.65),
        grain=rng.uniform(3, 8),
        vignette=rng.uniform(0.1, 0.45),
        shapes=tuple(random_shape(rng, palette) for _ in range(rng.randint(5, 12))),
        detail_seed=rng.randrange(2**31),
    )


def moved(scene: Scene, rng: random.Random) -> Scene:
    """The scene a moment later: about half of the objects moved by 5-15 % of the canvas."""
    shapes = []
    for shape in scene.shapes:
        if rng.random() < 0.5:
            distance, direction = rng.uniform(0.05, 0.15), rng.uniform(0, 2 * math.pi)
            shape = replace(
                shape, cx=shape.cx + distance * math.cos(direction), cy=shape.cy + distance * math.sin(direction)
            )
        shapes.append(shape)
    return replace(scene, shapes=tuple(shapes))


def reseeded(scene: Scene, rng: random.Random) -> Scene:
    """The same parameters, another detail seed: new noise, the objects placed anew."""
    shapes = tuple(replace(shape, cx=rng.uniform(0.05, 0.95), cy=rng.uniform(0.05, 0.95)) for shape in scene.shapes)
    return replace(scene, shapes=shapes, detail_seed=rng.randrange(2**31))


def _upscale(plane: Float, width: int, height: int) -> Float:
    image = Image.fromarray(plane).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32)


def noise_field(seed: int, width: int, height: int, roughness: float, channels: int) -> Float:
    """Multi-scale smooth noise (octaves from a 3-cell grid up to ~1/8 of the size, each
    `roughness` times the previous one's amplitude), about unit variance, shape (h, w, channels)."""
    rng = np.random.default_rng(seed)
    aspect = width / height
    cells_y = 3
    cells_x = max(2, round(cells_y * aspect))
    total: Float = rng.standard_normal((cells_y, cells_x, channels)).astype(np.float32)
    amplitude, norm = 1.0, 1.0
    while cells_y * 2 <= max(4, height // 2):
        cells_y, cells_x = cells_y * 2, cells_x * 2
        amplitude *= roughness
        norm += amplitude * amplitude
        grown = np.stack([_upscale(total[:, :, c], cells_x, cells_y) for c in range(channels)], axis=2)
        total = grown + amplitude * rng.standard_normal((cells_y, cells_x, channels)).astype(np.float32)
    full = np.stack([_upscale(total[:, :, c], width, height) for c in range(channels)], axis=2)
    return (full / math.sqrt(norm)).astype(np.float32)


def _shape_mask(shape: Shape, width: int, height: int) -> tuple[slice, slice, Float, Float] | None:
    """The shape's coverage (0..1) in its bounding box, and the rotated coordinate `u` (-1..1)."""
    scale = min(width, height)
    cx, cy = shape.cx * width, shape.cy * height
    rx, ry = max(2.0, shape.rx * scale), max(2.0, shape.ry * scale)
    reach = max(rx, ry) * (1.35 + shape.softness)
    x0, x1 = max(0, int(cx - reach)), min(width, int(cx + reach) + 1)
    y0, y1 = max(0, int(cy - reach)), min(height, int(cy + reach) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xs - cx, ys - cy
    cos, sin = math.cos(shape.angle), math.sin(shape.angle)
    u, v = (dx * cos + dy * sin) / rx, (-dx * sin + dy * cos) / ry
    if shape.kind == "box":
        radius = np.maximum(np.abs(u), np.abs(v))
    else:
        radius = np.sqrt(u * u + v * v)
        if shape.kind == "blob":
            theta = np.arctan2(v, u)
            radius = radius / (1 + 0.25 * np.sin(shape.lobes * theta + shape.lobe_phase))
    coverage = np.clip((1 - radius) / max(shape.softness, 0.01) + 0.5, 0, 1).astype(np.float32)
    return slice(y0, y1), slice(x0, x1), coverage, u.astype(np.float32)


def _draw(scene: Scene, width: int, height: int) -> Float:
    """The scene's smooth part at width x height, float RGB 0..255 (unclipped)."""
    ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    along = (xs * math.cos(scene.gradient_angle) + ys * math.sin(scene.gradient_angle)) * 0.5 + 0.5
    start, end = np.array(scene.palette[0], np.float32), np.array(scene.palette[1], np.float32)
    image: Float = (start + (end - start) * np.clip(along, 0, 1)[:, :, None]).astype(np.float32)
    luminance = noise_field(scene.detail_seed, width, height, scene.roughness, 1)
    chroma = noise_field(scene.detail_seed + 1, max(8, width // 4), max(8, height // 4), 0.4, 3)
    chroma_full = np.stack([_upscale(chroma[:, :, c], width, height) for c in range(3)], axis=2)
    chroma_full *= 0.35
    chroma_full += luminance
    chroma_full *= scene.noise_strength
    image += chroma_full
    for shape in scene.shapes:
        placed = _shape_mask(shape, width, height)
        if placed is None:
            continue
        rows, cols, coverage, u = placed
        color = np.array(shape.color, np.float32)
        if shape.texture == "shaded":
            tone = (1.0 + 0.35 * u)[:, :, None] * color
        elif shape.texture == "stripes":
            tone = (1.0 + 0.25 * np.sin(u * shape.stripe_frequency))[:, :, None] * color
        else:
            tone = np.broadcast_to(color, (*coverage.shape, 3))
        region = image[rows, cols]
        # the object keeps some of the noise field (lighting, texture) so it is not a flat stamp
        detail = 0.4 * (region - region.mean(axis=(0, 1)))
        image[rows, cols] = region + coverage[:, :, None] * (tone + detail - region)
    image *= (1 - scene.vignette * (xs * xs + ys * ys) / 2)[:, :, None]
    return image


def render(scene: Scene, width: int, height: int) -> Pixels:
    """The scene at width x height, RGB bytes (h, w, 3): the smooth part drawn at half size and
    enlarged (a slightly soft photo), then a film grain at full size."""
    half = _draw(scene, max(8, (width + 1) // 2), max(8, (height + 1) // 2))
    small = Image.fromarray(np.clip(half + 0.5, 0, 255).astype(np.uint8))
    pixels = np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    grain_rng = np.random.default_rng(scene.detail_seed + 2)
    grain = (scene.grain * grain_rng.standard_normal((height, width, 1), dtype=np.float32)).astype(np.int16)
    result: Pixels = np.clip(pixels + grain, 0, 255).astype(np.uint8)
    return result


def to_image(pixels: Pixels) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(pixels))


# -- encodings and edits -------------------------------------------------------------------------


def exif_bytes(rng: random.Random) -> bytes:
    exif = Image.Exif()
    exif[EXIF_MAKE] = rng.choice(("Canon", "NIKON CORPORATION", "SONY", "FUJIFILM", "Apple"))
    exif[EXIF_MODEL] = rng.choice(("EOS R6", "Z 6II", "ILCE-7M3", "X-T4", "iPhone 13"))
    exif[EXIF_DATETIME] = f"20{rng.randint(10, 24):02d}:{rng.randint(1, 12):02d}:{rng.randint(1, 28):02d} 12:00:00"
    exif[EXIF_SOFTWARE] = "near_copies"
    return exif.tobytes()


def encode(image: Image.Image, fmt: str, quality: int = 90, exif: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    options: dict[str, Any] = {"exif": exif} if exif else {}
    if fmt == "JPEG":
        image.save(buffer, "JPEG", quality=quality, **options)
    elif fmt == "WEBP":
        image.save(buffer, "WEBP", quality=quality, method=2, **options)
    elif fmt == "PNG":
        image.save(buffer, "PNG", compress_level=1, **options)
    else:
        raise ValueError(f"unknown format {fmt}")
    return buffer.getvalue()


def strip_jpeg_exif(data: bytes) -> bytes:
    """The JPEG without its EXIF APP1 segment(s), every other byte kept (what `exiftool -all=`
    does for EXIF): the compressed image data is untouched."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    out = bytearray(data[:2])
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise ValueError("corrupt JPEG marker stream")
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            break
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        segment = data[position : position + 2 + length]
        if not (marker == 0xE1 and segment[4:10] == b"Exif\x00\x00"):
            out += segment
        position += 2 + length
    out += data[position:]
    return bytes(out)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):  # Pillow built without FreeType
        return ImageFont.load_default()


def overlay(image: Image.Image, rng: random.Random) -> tuple[Image.Image, dict[str, Any]]:
    """A small caption (text on a dark box in a corner) or a translucent watermark text."""
    width, height = image.size
    style = rng.choice(("caption", "watermark"))
    text = rng.choice(("@gallery_one", "© photo.board", "pics-archive.example", "mirror 2024", "repost"))
    size = max(8, int(height * rng.uniform(0.025, 0.05)))
    font = _font(size)
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    text_w, text_h = right - left, bottom - top
    pad = max(2, size // 4)
    if style == "caption":
        x = rng.choice((pad * 2, width - text_w - pad * 3))
        y = rng.choice((pad * 2, height - text_h - pad * 3))
        draw.rectangle((x - pad, y - pad, x + text_w + pad, y + text_h + pad), fill=(0, 0, 0, 170))
        draw.text((x - left, y - top), text, font=font, fill=(255, 255, 255, 255))
    else:
        x = (width - text_w) // 2 + rng.randint(-width // 8, width // 8)
        y = int(height * rng.uniform(0.6, 0.9))
        draw.text((x - left, y - top), text, font=font, fill=(255, 255, 255, 110))
    edited = Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
    return edited, {"style": style, "text": text, "text_height": size}


def crop_box(rng: random.Random, width: int, height: int) -> tuple[int, int, int, int]:
    """At most 5 % off each axis (at least one pixel), split randomly between the two edges."""
    cut_x = max(1, int(width * rng.uniform(0.01, 0.05)))
    cut_y = max(1, int(height * rng.uniform(0.01, 0.05)))
    left, top = rng.randint(0, cut_x), rng.randint(0, cut_y)
    return left, top, width - (cut_x - left), height - (cut_y - top)


# -- the plan --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    kind: str
    path: str  # relative to the root, without suffix (the format decides it)


@dataclass(frozen=True)
class OriginalPlan:
    id: str
    index: int
    width: int
    height: int
    format: str
    placements: tuple[Placement, ...]


@dataclass
class Options:
    originals: int = 64
    min_mp: float = 1.0
    max_mp: float = 4.0
    max_copy_mp: float = 8.0  # an enlarged copy is capped at this many megapixels
    seed: int = 1
    models_per_site: int = 6
    kinds: tuple[str, ...] = field(default=EDIT_KINDS)
    negatives: tuple[str, ...] = field(default=NEGATIVE_KINDS)


SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


def plan(options: Options) -> list[OriginalPlan]:
    """Sizes, formats and file places of every original and its copies (names reveal nothing)."""
    rng = random.Random(options.seed)
    serials = list(range(1, options.originals * (1 + len(options.kinds) + len(options.negatives)) + 1))
    rng.shuffle(serials)
    next_serial = iter(serials)
    plans = []
    for index in range(options.originals):
        megapixels = rng.uniform(options.min_mp, options.max_mp)
        aspect_w, aspect_h = rng.choice(ASPECTS)
        height = max(16, round(math.sqrt(megapixels * 1e6 * aspect_h / aspect_w)))
        width = max(16, round(height * aspect_w / aspect_h))
        fmt = "PNG" if rng.random() < 0.2 else "JPEG"
        placements = []
        for kind in (ORIGINAL, *options.kinds, *options.negatives):
            site = SITES[0] if kind == ORIGINAL else rng.choice(SITES[1:] if kind in EDIT_KINDS else SITES)
            model = f"model_{rng.randrange(options.models_per_site):02d}"
            placements.append(Placement(kind, f"{site}/{model}/{next(next_serial):06d}"))
        plans.append(OriginalPlan(f"o{index:04d}", index, width, height, fmt, tuple(placements)))
    return plans


def _entry(group: str, kind: str, original: str, image_size: tuple[int, int], fmt: str, **extra: Any) -> dict[str, Any]:
    return {
        "group": group,
        "kind": kind,
        "original": original,
        "negative_of": original if kind in NEGATIVE_KINDS else None,
        "width": image_size[0],
        "height": image_size[1],
        "format": fmt,
        "edit": extra,
    }


def make_original(root: str, item: OriginalPlan, options: Options) -> Truth:
    """Draw one original, write it, its copies and its negatives; return their truth entries."""
    rng = random.Random(options.seed * 1_000_003 + item.index)
    scene = random_scene(rng)
    canvas_w, canvas_h = math.ceil(item.width * CANVAS_MARGIN), math.ceil(item.height * CANVAS_MARGIN)
    spare_x, spare_y = canvas_w - item.width, canvas_h - item.height
    frame_x, frame_y = rng.randint(0, spare_x // 4), rng.randint(0, spare_y // 4)
    canvas = render(scene, canvas_w, canvas_h)
    picture = to_image(canvas[frame_y : frame_y + item.height, frame_x : frame_x + item.width])
    del canvas
    exif = exif_bytes(rng)
    original_quality = rng.randint(88, 95)
    original_bytes = encode(picture, item.format, original_quality, exif)
    truth: Truth = {}

    def write(placement: Placement, data: bytes, fmt: str, entry: dict[str, Any]) -> None:
        relative = placement.path + SUFFIX[fmt]
        target = Path(root) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        truth[relative] = entry

    for placement in item.placements:
        kind, group, size = placement.kind, item.id, picture.size
        if kind == ORIGINAL:
            write(placement, original_bytes, item.format, _entry(group, kind, item.id, size, item.format,
                                                                 quality=original_quality, exif=True))  # fmt: skip
        elif kind == "resize":
            factor = rng.uniform(0.5, 0.85) if rng.random() < 0.5 else rng.uniform(1.15, 2.0)
            factor = min(factor, math.sqrt(options.max_copy_mp * 1e6 / (item.width * item.height)))
            new_size = (max(8, round(item.width * factor)), max(8, round(item.height * factor)))
            method = Image.Resampling.LANCZOS if factor < 1 else Image.Resampling.BICUBIC
            quality = rng.randint(85, 95)
            data = encode(picture.resize(new_size, method), item.format, quality, exif)
            write(placement, data, item.format, _entry(group, kind, item.id, new_size, item.format,
                                                       scale=round(factor, 3), quality=quality))  # fmt: skip
        elif kind in ("jpeg", "webp"):
            fmt, quality = kind.upper(), rng.randint(60, 95)
            write(placement, encode(picture, fmt, quality), fmt, _entry(group, kind, item.id, size, fmt,
                                                                        quality=quality))  # fmt: skip
        elif kind == "png":
            write(placement, encode(picture, "PNG"), "PNG", _entry(group, kind, item.id, size, "PNG"))
        elif kind == "exif_stripped":
            # a JPEG loses its EXIF segment byte for byte; a PNG is written again without it
            data = strip_jpeg_exif(original_bytes) if item.format == "JPEG" else encode(picture, item.format)
            write(placement, data, item.format, _entry(group, kind, item.id, size, item.format))
        elif kind == "crop":
            box = crop_box(rng, item.width, item.height)
            cropped = picture.crop(box)
            quality = rng.randint(85, 95)
            data = encode(cropped, item.format, quality, exif)
            write(placement, data, item.format, _entry(group, kind, item.id, cropped.size, item.format,
                                                       box=list(box), quality=quality))  # fmt: skip
        elif kind == "overlay":
            edited, details = overlay(picture, rng)
            quality = rng.randint(85, 95)
            write(placement, encode(edited, item.format, quality, exif), item.format,
                  _entry(group, kind, item.id, size, item.format, quality=quality, **details))  # fmt: skip
        elif kind == "other_view":
            direction = rng.uniform(0, 2 * math.pi)
            shift = rng.uniform(0.15, 0.30)
            dx = round(math.cos(direction) * shift * item.width)
            dy = round(math.sin(direction) * shift * item.height)
            # keep the shifted frame on the canvas: reflect the shift where it would leave it
            view_x = frame_x + dx if 0 <= frame_x + dx <= spare_x else frame_x - dx
            view_y = frame_y + dy if 0 <= frame_y + dy <= spare_y else frame_y - dy
            view_x, view_y = min(max(view_x, 0), spare_x), min(max(view_y, 0), spare_y)
            second = render(moved(scene, rng), canvas_w, canvas_h)
            shot = to_image(second[view_y : view_y + item.height, view_x : view_x + item.width])
            del second
            fmt, quality = item.format, rng.randint(85, 95)
            write(placement, encode(shot, fmt, quality, exif_bytes(rng)), fmt, _entry(
                f"{item.id}-{kind}", kind, item.id, shot.size, fmt,
                shift=[view_x - frame_x, view_y - frame_y], quality=quality))  # fmt: skip
        elif kind == "other_detail":
            other = to_image(render(reseeded(scene, rng), item.width, item.height))
            fmt, quality = item.format, rng.randint(85, 95)
            write(placement, encode(other, fmt, quality, exif_bytes(rng)), fmt,
                  _entry(f"{item.id}-{kind}", kind, item.id, other.size, fmt, quality=quality))  # fmt: skip
        else:
            raise ValueError(f"unknown kind {kind}")
    return truth


def generate(root: Path, options: Options, workers: int = 1) -> Truth:
    """Write the library under `root` (which must not exist or be empty) and return its truth."""
    root.mkdir(parents=True, exist_ok=True)
    plans = plan(options)
    truth: Truth = {}
    if workers <= 1:
        parts: Iterator[Truth] = (make_original(str(root), item, options) for item in plans)
        for part in parts:
            truth.update(part)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for part in pool.map(make_original, [str(root)] * len(plans), plans, [options] * len(plans)):
                truth.update(part)
    return dict(sorted(truth.items()))


def truth_document(truth: Truth, options: Options) -> dict[str, Any]:
    return {"version": TRUTH_VERSION, "options": asdict(options), "files": truth}


def write_truth(path: Path, truth: Truth, options: Options) -> None:
    path.write_text(json.dumps(truth_document(truth, options), indent=1, ensure_ascii=False))


def read_truth(path: Path) -> Truth:
    document: dict[str, Any] = json.loads(path.read_text())
    if document.get("version") != TRUTH_VERSION:
        raise ValueError(f"{path}: truth version {document.get('version')}, expected {TRUTH_VERSION}")
    files: Truth = document["files"]
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--truth", type=Path, help="default: ROOT/../<root name>.truth.json")
    parser.add_argument("--originals", type=int, default=Options.originals)
    parser.add_argument("--min-mp", type=float, default=Options.min_mp)
    parser.add_argument("--max-mp", type=float, default=Options.max_mp)
    parser.add_argument("--max-copy-mp", type=float, default=Options.max_copy_mp)
    parser.add_argument("--seed", type=int, default=Options.seed)
    parser.add_argument("--workers", type=int, default=1, help="processes drawing originals in parallel")
    parser.add_argument("--force", action="store_true", help="delete ROOT first if it exists")
    args = parser.parse_args(argv)
    root: Path = args.root
    if root.exists():
        if not args.force:
            print(f"{root} exists (use --force)", file=sys.stderr)
            return 2
        shutil.rmtree(root)
    options = Options(args.originals, args.min_mp, args.max_mp, args.max_copy_mp, args.seed)
    truth = generate(root, options, args.workers)
    truth_path: Path = args.truth or root.parent / f"{root.name}.truth.json"
    write_truth(truth_path, truth, options)
    print(f"{len(truth)} files ({options.originals} originals) -> {root} (truth {truth_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
