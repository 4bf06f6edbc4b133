"""What a download holds: the selection (one model, several, or a whole site) and its names.

Each file is stat'ed fresh per request (`select`: enough to find a cached archive, whose bytes
are already made) and, before anything is built, opened (`readable`): a file gone since the
listing, or one the server cannot open (permissions, a dangling link, not a regular file), is
left out there, before any plan or byte, whatever the format. Also the cache key (format +
selection + every file's relative path, size and mtime) and the suggested file name, capped to
fit a file-system name. No aiohttp here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import blake3

from server.archives.plans import FORMAT_VERSION
from server.catalog import Catalog
from server.errors import NotFound
from server.library import MAX_NAME_BYTES, natural_key

log = logging.getLogger("archive_catalog")

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
    folders: list[tuple[Path, str, list[tuple[str, str]]]] = []
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
        folders.append((folder.path, model, media))
    files = await asyncio.to_thread(_stat_files, folders)  # one trip to a thread, not one per model
    return Selection(site, tuple(names), whole_site, tuple(files))


async def readable(selection: Selection) -> Selection:
    """`selection` (from `select`) with every file opened: those the server cannot read as
    regular files left out (what a build may promise), sizes and mtimes as of now."""
    files = await asyncio.to_thread(_open_files, selection.files)
    return replace(selection, files=tuple(files))


def _stat_files(folders: Sequence[tuple[Path, str, Sequence[tuple[str, str]]]]) -> list[SelectedFile]:
    """The regular files among the listed ones (one `stat` each: a cache hit needs no more)."""
    out = []
    stat_of, is_regular = os.stat, stat.S_ISREG
    for folder, model, names in folders:
        prefix = f"{folder}{os.sep}"
        try:
            folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # stats relative to it
        except OSError:
            continue  # the folder went since the listing
        try:
            for name, kind in names:
                try:
                    info = stat_of(name, dir_fd=folder_fd)
                except OSError:
                    continue  # gone since the listing, or a dangling link: `readable` tells why not
                if is_regular(info.st_mode):
                    out.append(
                        SelectedFile(
                            model, name, prefix + name, info.st_size, info.st_mtime, info.st_mtime_ns, info.st_ino, kind
                        )
                    )
        finally:
            os.close(folder_fd)
    return out


def _open_files(files: Sequence[SelectedFile]) -> list[SelectedFile]:
    out = []
    for file in files:
        info = _readable_file(file.path, file.archive_name)
        if info is not None:
            out.append(
                replace(file, size=info.st_size, mtime=info.st_mtime, mtime_ns=info.st_mtime_ns, inode=info.st_ino)
            )
    return out


def _readable_file(path: str, shown: str) -> os.stat_result | None:
    """The file's stat if the server can open it for reading as a regular file, else None.

    Opening (not just stat'ing) is the check: a file the server cannot read must never be
    promised in an archive whose first bytes are already on their way."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # NONBLOCK: a FIFO never hangs us
    except FileNotFoundError:
        return None  # gone since the listing: not part of the archive
    except OSError as exc:
        log.warning("Left out of the archive (cannot be read: %s): %s", exc.strerror, shown)
        return None
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(info.st_mode):
        log.warning("Left out of the archive (not a regular file): %s", shown)
        return None
    return info


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
    suffix = " (PDFs)" if fmt == "pdfs-zip" else ""
    return fit_name(base, f"{suffix}.{EXTENSIONS[fmt]}")


def fit_name(stem: str, ending: str, mark: str = "…", limit: int = MAX_NAME_BYTES) -> str:
    """`stem + ending`, the stem cut (at a character, trailing spaces dropped, `mark` showing the
    cut) so the whole name fits `limit` UTF-8 bytes: a file system can then store it as named."""
    if len((stem + ending).encode()) <= limit:
        return stem + ending
    room = limit - len((mark + ending).encode())
    cut = stem.encode()[: max(room, 0)].decode(errors="ignore").rstrip()
    return f"{cut}{mark}{ending}"
