"""What a download holds: the selection (one model, several, or a whole site) and its names.

Each file is stat'ed fresh per request (a file gone since the listing is left out); the cache
key is format + selection + every file's relative path, size and mtime. No aiohttp here.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import blake3

from server.archives import FORMAT_VERSION
from server.catalog import Catalog
from server.errors import NotFound
from server.library import natural_key

FORMATS = ("zip", "pdf", "pdfs-zip")
EXTENSIONS = {"zip": "zip", "pdf": "pdf", "pdfs-zip": "zip"}
CONTENT_TYPES = {"zip": "application/zip", "pdf": "application/pdf", "pdfs-zip": "application/zip"}


@dataclass(frozen=True, slots=True)
class SelectedFile:
    model: str
    name: str
    path: str
    size: int
    mtime: float
    mtime_ns: int
    inode: int
    kind: str

    @property
    def archive_name(self) -> str:
        return f"{self.model}/{self.name}"


@dataclass(frozen=True, slots=True)
class Selection:
    site: str
    models: tuple[str, ...]
    whole_site: bool
    files: tuple[SelectedFile, ...]

    def images(self) -> list[SelectedFile]:
        return [f for f in self.files if f.kind == "image"]

    @property
    def scope(self) -> tuple[str, ...]:
        """The models named, or none for the whole site (what a delete must purge)."""
        return () if self.whole_site else self.models


async def select(catalog: Catalog, site: str, models: Sequence[str]) -> Selection:
    """The files of `models` of `site` (all its models when none), in natural order; 404s."""
    whole_site = not models
    if whole_site:
        listing = await catalog.site_listing(site)
        names = [m.name for m in listing.models]
        if not names:
            raise NotFound(f"Site {site!r} holds no media.")
    else:
        names = sorted(set(models), key=natural_key)
    files: list[SelectedFile] = []
    for model in names:
        try:
            folder = await catalog.folder(site, model)
        except NotFound:
            if not whole_site:
                raise
            continue  # gone since the site was walked: the rest of the site still downloads
        media = [(f.name, "image") for f in folder.images] + [(f.name, "video") for f in folder.videos]
        if not media and not whole_site:
            raise NotFound(f"Model {model!r} in site {site!r} holds no media.")
        files.extend(await asyncio.to_thread(_stat_files, folder.path, model, media))
    return Selection(site, tuple(names), whole_site, tuple(files))


def _stat_files(folder: Path, model: str, names: Sequence[tuple[str, str]]) -> list[SelectedFile]:
    out = []
    for name, kind in names:
        path = str(folder / name)
        try:
            info = os.stat(path)
        except OSError:
            continue  # gone since the listing: not part of the archive
        out.append(SelectedFile(model, name, path, info.st_size, info.st_mtime, info.st_mtime_ns, info.st_ino, kind))
    return out


def selection_key(fmt: str, selection: Selection) -> str:
    hasher = blake3.blake3()
    models = "\x00*" if selection.whole_site else "\x00".join(selection.models)
    hasher.update(f"{FORMAT_VERSION}\x00{fmt}\x00{selection.site}\x00{models}\x01".encode())
    for f in selection.files:
        hasher.update(f"{f.archive_name}\x00{f.size}\x00{f.mtime_ns}\x01".encode())
    return hasher.hexdigest()[:40]


def download_filename(selection: Selection, fmt: str) -> str:
    if selection.whole_site:
        base = selection.site
    elif len(selection.models) == 1:
        base = f"{selection.site} — {selection.models[0].replace('/', ' - ')}"
    else:
        base = f"{selection.site} — {len(selection.models)} models"
    if fmt == "pdfs-zip":
        base += " (PDFs)"
    return f"{base}.{EXTENSIONS[fmt]}"
