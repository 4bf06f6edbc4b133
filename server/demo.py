"""A small demo library, generated once under the cache dir when no library is given.

Real images (Pillow) in two sites with a nested gallery-dl style model, one duplicate pair so
the duplicate scan finds something, and a short video when ffmpeg is on PATH.
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

DEMO_MODELS = {
    "gallery-one": ["ana", "bruno", "carla"],
    "média-site": ["patreon/joão", "patreon/sofia", "zé"],
}
MARKER = ".demo-complete"


def _image_bytes(rng: random.Random, index: int) -> tuple[str, bytes]:
    from PIL import Image, ImageDraw

    width, height = rng.choice([(640, 480), (480, 640), (800, 600), (600, 800)])
    base = tuple(rng.randrange(40, 200) for _ in range(3))
    image = Image.new("RGB", (width, height), base)
    draw = ImageDraw.Draw(image)
    for _ in range(14):
        x, y = rng.randrange(width), rng.randrange(height)
        radius = rng.randrange(20, 160)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    draw.text((12, 12), f"demo {index}", fill=(255, 255, 255))
    buffer = io.BytesIO()
    if index % 5 == 4:
        image.save(buffer, "PNG")
        return "png", buffer.getvalue()
    image.save(buffer, "JPEG", quality=85)
    return "jpg", buffer.getvalue()


def _video_bytes() -> bytes | None:
    if not shutil.which("ffmpeg"):
        return None
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "clip.mp4"
        command = [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=3:size=320x240:rate=15",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            str(out),
        ]
        if subprocess.run(command, check=False).returncode != 0:
            return None
        return out.read_bytes()


def ensure_demo_library(cache_dir: Path) -> Path:
    """Create (once) and return the demo library folder."""
    root = cache_dir / "demo-library"
    if (root / MARKER).exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(7)
    video = _video_bytes()
    index = 0
    first_image: bytes | None = None
    for site, models in DEMO_MODELS.items():
        for model in models:
            folder = root / site / model
            folder.mkdir(parents=True, exist_ok=True)
            for number in range(1, rng.randrange(6, 13)):
                extension, data = _image_bytes(rng, index)
                first_image = first_image or data
                (folder / f"img{number}.{extension}").write_bytes(data)
                index += 1
            (folder / "info.json").write_text('{"source": "demo"}')
            if video is not None and model in ("bruno", "zé"):
                (folder / "clip.mp4").write_bytes(video)
    if first_image is not None:
        (root / "gallery-one" / "carla" / "copy of ana img1.jpg").write_bytes(first_image)
    (root / MARKER).write_text("ok\n")
    return root
