"""Small real libraries for tests (real JPEG/PNG bytes written into tmp_path), a real test video,
and `eventually`, the one way a test waits for a condition."""

from __future__ import annotations

import asyncio
import inspect
import io
import os
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import pytest
from PIL import Image


def jpeg_bytes(seed: int = 0, size: tuple[int, int] = (32, 24)) -> bytes:
    image = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def png_bytes(seed: int = 0, size: tuple[int, int] = (24, 32)) -> bytes:
    image = Image.new("RGB", size, ((seed * 17) % 256, (seed * 29) % 256, (seed * 71) % 256))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def write(path: Path, data: bytes, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def make_model(root: Path, site: str, model: str, names: Iterable[str], seed: int = 0) -> Path:
    """A model folder holding the given file names (media get real image bytes)."""
    folder = root / site / model
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        data = png_bytes(seed + index) if name.lower().endswith(".png") else jpeg_bytes(seed + index)
        write(folder / name, data, mtime=1_700_000_000 + index)
    return folder


def make_library(root: Path) -> Path:
    """Two sites, a nested gallery-dl style model, sidecars, hidden and partial files."""
    make_model(root, "alpha", "ana", ["img1.jpg", "img2.jpg", "img10.jpg", "IMG3.PNG", "clip.mp4"], seed=1)
    make_model(root, "alpha", "bruno", ["a.jpg", "b.webp"], seed=10)
    make_model(root, "alpha", "Carla", ["only.jpg"], seed=20)
    make_model(root, "beta", "patreon/joão", ["p1.jpg", "p2.jpg"], seed=30)
    write(root / "alpha" / "ana" / "info.json", b"{}")
    write(root / "alpha" / "ana" / "notes.txt", b"notes")
    write(root / "alpha" / "ana" / "img4.jpg.part", b"partial")
    write(root / "alpha" / "ana" / ".hidden.jpg", jpeg_bytes(99))
    return root


OLD_MTIME = 1_700_000_000


def age_folders(root: Path) -> None:
    """Give every folder an old mtime, so listings of it are cacheable (not 'racy')."""
    for folder, dirs, _files in os.walk(root):
        for name in dirs:
            os.utime(os.path.join(folder, name), (OLD_MTIME, OLD_MTIME))
    os.utime(root, (OLD_MTIME, OLD_MTIME))


def make_video(target: Path, seconds: int, *encoder: str) -> Path:
    """A real video made by ffmpeg from its test pattern; ffmpeg missing fails under CI=true."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ffmpeg is missing under CI=true")
        pytest.skip("ffmpeg is not installed")
    source = f"testsrc=size=160x120:rate=10:duration={seconds}"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", source, *encoder, str(target)], check=True)
    return target


async def eventually(check: Callable[[], bool | Awaitable[bool]], *, within: float = 10.0, every: float = 0.05) -> None:
    """Until `check()` (plain or async) holds; fails when it still does not after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"the condition did not hold within {within:g} s"
        await asyncio.sleep(every)
