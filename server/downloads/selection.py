"""What a download holds: the selection (one model, several, or a whole site) and its names.

Each file is stat'ed per request (`select`: enough to find a cached archive, whose bytes are
already made), unless inotify says nothing in its folder changed since the last time
(`StatMemo`, over `server.infra.folder_events`), and, before anything is built, opened
(`readable`): a file gone since the listing, or one the server cannot open (permissions, a
dangling link, not a regular file), is left out there, before any plan or byte, whatever the
format. Also the cache key (format +
selection + every file's relative path, size and mtime) and the suggested file name, capped to
fit a file-system name. No aiohttp here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import chain

import blake3

from server.archives.plans import FORMAT_VERSION
from server.catalog import Catalog
from server.errors import NotFound
from server.infra.folder_events import FolderEvents
from server.library import MAX_NAME_BYTES, FolderListing, natural_key

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
    key_line: bytes = field(init=False, repr=False, compare=False)  # its part of the cache key, made once

    def __post_init__(self) -> None:  # also after `replace`, with the new size and mtime
        line = f"{self.model}/{self.name}\x00{self.size}\x00{self.mtime_ns}\x01"
        object.__setattr__(self, "key_line", line.encode(errors="surrogateescape"))

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


async def select(catalog: Catalog, site: str, models: Sequence[str], memo: StatMemo) -> Selection:
    """The files of `models` of `site` (all its models when none), in natural order; 404s.

    A model folder whose files were stat'ed before, and in which inotify saw nothing change
    since (`memo`), gives those stats again (no syscall per file); the rest are stat'ed."""
    whole_site = not models
    if whole_site:
        listing = await catalog.site_listing(site)
        names = [m.name for m in listing.models]
        if not names:
            raise NotFound(f"Site {site!r} holds no media.")
    else:
        names = sorted(set(models), key=natural_key)
    chosen: list[tuple[FolderListing, str]] = []
    for model in names:
        try:
            folder = await catalog.folder(site, model)
        except NotFound:
            if not whole_site:
                raise
            continue  # gone since the site was walked: the rest of the site still downloads
        if not folder.images and not folder.videos and not whole_site:
            raise NotFound(f"Model {model!r} in site {site!r} holds no media.")
        chosen.append((folder, model))
    known = memo.known(chosen)
    unknown = [pair for pair, files in zip(chosen, known, strict=True) if files is None]
    if unknown:
        stamps = memo.stamps(unknown)  # before the stats: a change after them moves the stamp
        stated = await asyncio.to_thread(_stat_folders, unknown)  # one trip to a thread, not one per model
        fresh = iter(stated)
        for (folder, _), stamp, (files, exclusive) in zip(unknown, stamps, stated, strict=True):
            if stamp is not None and exclusive:
                memo.keep(folder, stamp, files)
        known = [files if files is not None else next(fresh)[0] for files in known]
    return Selection(site, tuple(names), whole_site, tuple(chain.from_iterable(files or () for files in known)))


class StatMemo:
    """The stat'ed files of model folders watched by `FolderEvents`, kept while nothing in the
    folder changes: what a repeat download (a cache hit) needs without a `stat` per file.

    A folder is kept only if its files are its own: no symbolic link (its target may change
    elsewhere) and no file with another hard link (changed through another folder, the event
    is that folder's). The entry also keeps the catalog listing it was made for: a folder
    listed with other media (a file added or gone) is stat'ed again."""

    def __init__(self, events: FolderEvents | None) -> None:
        self.events = events
        self._folders: OrderedDict[str, tuple[FolderListing, int, tuple[SelectedFile, ...]]] = OrderedDict()

    def known(self, chosen: Sequence[tuple[FolderListing, str]]) -> list[tuple[SelectedFile, ...] | None]:
        """Each folder's kept files if they still hold, else None."""
        if self.events is None:
            return [None] * len(chosen)
        self.events.refresh()
        out: list[tuple[SelectedFile, ...] | None] = []
        for folder, _ in chosen:
            path = str(folder.path)
            kept = self._folders.get(path)
            if kept is not None and _same_media(kept[0], folder) and self.events.still(path, kept[1]):
                if kept[0] is not folder:  # listed again alike: compared by identity from now on
                    self._folders[path] = (folder, kept[1], kept[2])
                out.append(kept[2])
            else:
                out.append(None)
        return out

    def stamps(self, chosen: Sequence[tuple[FolderListing, str]]) -> list[int | None]:
        if self.events is None:
            return [None] * len(chosen)
        return [self.events.stamp(str(folder.path)) for folder, _ in chosen]

    def keep(self, folder: FolderListing, stamp: int, files: tuple[SelectedFile, ...]) -> None:
        path = str(folder.path)
        self._folders[path] = (folder, stamp, files)
        self._folders.move_to_end(path)
        assert self.events is not None
        while len(self._folders) > self.events.max_folders:  # past it, the oldest are no longer watched
            self._folders.popitem(last=False)

    def close(self) -> None:
        self._folders.clear()
        if self.events is not None:
            self.events.close()


def _same_media(kept: FolderListing, now: FolderListing) -> bool:
    """The same media listed (names, sizes, mtimes: the catalog re-reads a folder as new for many reasons)."""
    return kept is now or (kept.images == now.images and kept.videos == now.videos)


async def readable(selection: Selection) -> Selection:
    """`selection` (from `select`) with every file opened: those the server cannot read as
    regular files left out (what a build may promise), sizes and mtimes as of now."""
    files = await asyncio.to_thread(_open_files, selection.files)
    return replace(selection, files=tuple(files))


def _stat_folders(
    chosen: Sequence[tuple[FolderListing, str]],
) -> list[tuple[tuple[SelectedFile, ...], bool]]:
    """Each folder's regular files among its listed media (one `stat` each: a cache hit needs
    no more), and whether they are its own (no symbolic link, no second hard link)."""
    return [_stat_folder(folder, model) for folder, model in chosen]


def _stat_folder(listing: FolderListing, model: str) -> tuple[tuple[SelectedFile, ...], bool]:
    prefix = f"{listing.path}{os.sep}"
    try:
        folder_fd = os.open(listing.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # stats relative to it
    except OSError:
        return (), False  # the folder went since the listing
    out = []
    exclusive = True
    stat_of, is_regular, is_link = os.stat, stat.S_ISREG, stat.S_ISLNK
    try:
        for kind, media in (("image", listing.images), ("video", listing.videos)):
            for file in media:
                name = file.name
                try:
                    info = stat_of(name, dir_fd=folder_fd, follow_symlinks=False)
                    if is_link(info.st_mode):
                        exclusive = False
                        info = stat_of(name, dir_fd=folder_fd)
                except OSError:
                    exclusive = False  # a dangling link, or gone since the listing: `readable` tells why
                    continue
                if info.st_nlink > 1:
                    exclusive = False
                if is_regular(info.st_mode):
                    out.append(
                        SelectedFile(
                            model, name, prefix + name, info.st_size, info.st_mtime, info.st_mtime_ns, info.st_ino, kind
                        )
                    )
    finally:
        os.close(folder_fd)
    return tuple(out), exclusive


def _open_files(files: Sequence[SelectedFile]) -> list[SelectedFile]:
    out = []
    for file in files:
        info = _readable_file(file.path, file.archive_name)
        if info is None:
            continue
        if info.st_size == file.size and info.st_mtime_ns == file.mtime_ns and info.st_ino == file.inode:
            out.append(file)  # as stat'ed (the common case: no copy to make)
        else:
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
    models = "\x00*" if selection.whole_site else "\x00".join(selection.models)
    head = f"{FORMAT_VERSION}\x00{fmt}\x00{selection.site}\x00{models}\x01"
    hasher = blake3.blake3(head.encode(errors="surrogateescape"))
    hasher.update(b"".join([f.key_line for f in selection.files]))  # one update, not one per file
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
