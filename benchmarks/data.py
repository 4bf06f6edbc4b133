"""Benchmark data, generated once under DATA_DIR (outside the repo) and reused: make_library.py
trees and files of random bytes; and reading a file into the page cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .settings import DATA_DIR, PYTHON, generator


def ensure_library(name: str, *args: str) -> Path:
    """A library made by make_library.py with `args`, under DATA_DIR/name; reused when unchanged."""
    root = DATA_DIR / name
    stamp = DATA_DIR / f"{name}.args"
    wanted = " ".join(args)
    if root.is_dir() and stamp.is_file() and stamp.read_text() == wanted:
        return root
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    print(f"generating {root} ({wanted}) …", file=sys.stderr, flush=True)
    subprocess.run([PYTHON, str(generator("make_library.py")), "--root", str(root), "--force", *args], check=True)
    stamp.write_text(wanted)
    return root


def random_file(relative: str, size: int) -> Path:
    """A file of `size` random bytes at DATA_DIR/relative, written once and reused."""
    path = DATA_DIR / relative
    if path.is_file() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"writing {size} random bytes to {path} …", file=sys.stderr, flush=True)
    partial = path.with_name(path.name + ".partial")
    chunk = 16 * 1024 * 1024
    with open(partial, "wb") as out:
        left = size
        while left > 0:
            out.write(os.urandom(min(chunk, left)))
            left -= chunk
    partial.rename(path)
    return path


def warm_page_cache(path: Path) -> None:
    """Read a file once so the page cache holds it (benchmarks compare warm-cache serving)."""
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(8 * 1024 * 1024)
        while handle.readinto(buffer):
            pass
