"""Replacing a file so that a crash at any moment leaves either the old or the new content.

The temp file is hidden and named after its target (`.{name}.{random}.tmp`, see `is_temp`), so
a folder's owner can tell a write in flight (or left by a kill) from real content.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def is_temp(name: str) -> bool:
    """Whether a file name is one of `write_atomically`'s temp files."""
    return name.startswith(".") and name.endswith(".tmp")


def write_atomically(path: Path, data: bytes, durable: bool = True) -> None:
    """Write a hidden temp file beside `path`, fsync it (unless not `durable`: content that can
    be made again, such as a thumbnail, needs no fsync), rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
