"""Sizes: human-readable ("1.00 MB": decimal units, as the contract's MB) and of folders on disk."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def human_bytes(count: float) -> str:
    value = float(count)
    for unit in _UNITS:
        if abs(value) < 1000 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def folder_size(path: Path) -> int:
    """Bytes of every file under `path` (links counted as links, never followed)."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total
