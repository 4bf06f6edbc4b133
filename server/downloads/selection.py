"""What a download holds: the selection (one model, several, or a whole site) and its names.

Each file is stat'ed per request (`select`: enough to find a cached archive, whose bytes are
already made), unless inotify says nothing in its folder changed since the last time
(`StatMemo`, over `server.infra.folder_events`; and when nothing changed in any watched folder,
the last selection of the same models is given again whole, key included), and, before anything is built, opened
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
from typing import NamedTuple

import blake3

from server.archives.plans import FORMAT_VERSION
from server.catalog import Catalog
from server.errors import NotFound
from server.infra.folder_events import FolderEvents
from server.library import FOLDER_FLAGS, MAX_NAME_BYTES, FolderListing, SiteListing, natural_key

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
    keys: dict[str, str] = field(init=False, default_factory=dict, repr=False, compare=False)  # format -> cache key

    def images(self) -> list[SelectedFile]:
        return [f for f in self.files if f.kind == "image"]

    @property
    def scope(self) -> tuple[str, ...]:
        """The models named, or none for the whole site (what a delete must purge)."""
        return () if self.whole_site else self.models


async def select(catalog: Catalog, site: str, models: Sequence[str], memo: StatMemo) -> Selection:
    """The files of `models` of `site` (all its models when none), in natural order; 404s.

    A model folder whose files were stat'ed before, and in which inotify saw nothing change
    since (`memo`), gives those stats again (no syscall per file); the rest are stat'ed. When no
    watched folder changed at all since the same models were selected, their kept folders are
    not even looked up (`StatMemo.recall`): only the folders no stamp vouches for are read."""
    whole_site = not models
    listing: SiteListing | None = None
    if whole_site:
        listing = await catalog.site_listing(site)
        names = [m.name for m in listing.models]
        if not names:
            raise NotFound(f"Site {site!r} holds no media.")
    else:
        catalog.require_available()
        names = sorted(set(models), key=natural_key)
    asked = (site, () if whole_site else tuple(names))
    recalled = memo.recall(asked, listing)
    if recalled is not None and len(recalled.vouched) == len(names):
        return recalled.selection  # the repeat download of an unchanged selection: nothing looked up
    vouched = dict(recalled.vouched) if recalled is not None else {}  # model -> its files, still in place
    begun = memo.moment()  # before the catalog is read
    chosen: list[tuple[FolderListing, str]] = []
    for model in names:
        if model in vouched:
            continue
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
    epoch = memo.epoch()  # what `vouched` holds as of
    if recalled is not None and epoch != recalled.epoch:  # a folder changed meanwhile: all of them again
        memo.forget(asked)
        return await select(catalog, site, models, memo)
    # kept by a stamp taken before this request read the catalog: while no watched folder
    # changes, what the same request would find again (a stamp taken later may postdate a change
    # that a listing read before it missed)
    vouched.update(memo.kept_before(chosen, known, begun))
    unknown = [pair for pair, files in zip(chosen, known, strict=True) if files is None]
    if unknown:
        stamps = memo.stamps(unknown)  # before the stats: a change after them moves the stamp
        stated = await asyncio.to_thread(_stat_folders, unknown)  # one trip to a thread, not one per model
        fresh = iter(stated)
        for (folder, _), stamp, (files, exclusive, identity) in zip(unknown, stamps, stated, strict=True):
            if stamp is not None and exclusive and identity is not None:
                memo.keep(folder, stamp, files, identity)
        known = [files if files is not None else next(fresh)[0] for files in known]
    looked_up = {model: files for (_, model), files in zip(chosen, known, strict=True) if files is not None}
    if recalled is not None and looked_up == recalled.looked_up:
        selection = recalled.selection  # the folders read again hold what they held
    else:
        found = {**{model: kept.files for model, kept in vouched.items()}, **looked_up}
        files = tuple(chain.from_iterable(found.get(model, ()) for model in names))
        selection = Selection(site, tuple(names), whole_site, files)
    return memo.remember(asked, _Remembered(epoch, listing, vouched, looked_up, selection))


Identity = tuple[int, int]  # a folder's (st_dev, st_ino)


class _Kept(NamedTuple):
    """A folder's files as stat'ed, and what vouches for them."""

    listing: FolderListing  # the catalog listing they were stat'ed for
    stamp: int  # the folder's inotify stamp, taken before the stats
    files: tuple[SelectedFile, ...]
    identity: Identity  # the directory the stats were made in (the one the stamp watches)


class _Vouched(NamedTuple):
    """A folder of a remembered selection: its files and where they must still be."""

    files: tuple[SelectedFile, ...]
    path: str
    identity: Identity


@dataclass(frozen=True, slots=True)
class _Remembered:
    epoch: int | None  # `FolderEvents.epoch` when the selection was made
    listing: SiteListing | None  # a whole site's: the catalog listing its model names came from
    vouched: dict[str, _Vouched]  # model -> its files, for the folders stamps vouch for
    looked_up: dict[str, tuple[SelectedFile, ...]]  # the same for the folders read by the request
    selection: Selection


MAX_SELECTIONS_KEPT = 256


class StatMemo:
    """The stat'ed files of model folders watched by `FolderEvents`, kept while nothing in the
    folder changes: what a repeat download (a cache hit) needs without a `stat` per file.

    A selection whose every folder was so kept (`remember`) is itself kept while no watched
    folder changes at all (`FolderEvents.epoch`), each folder's path still leads to the very
    directory its stamp watches (one `stat` each: a parent renamed, replaced or made unreadable
    tells its children's watches nothing) and, for a whole site, while the catalog gives the
    same site listing (`recall`): a repeat download of a site of hundreds of folders then asks
    neither the catalog nor the memo about each folder.

    A folder is kept only if its files are its own: no symbolic link (its target may change
    elsewhere) and no file with another hard link (changed through another folder, the event
    is that folder's). The entry also keeps the catalog listing it was made for: a folder
    listed with other media (a file added or gone) is stat'ed again."""

    def __init__(self, events: FolderEvents | None) -> None:
        self.events = events
        self._folders: OrderedDict[str, _Kept] = OrderedDict()
        self._selections: OrderedDict[tuple[str, tuple[str, ...]], _Remembered] = OrderedDict()

    def recall(self, asked: tuple[str, tuple[str, ...]], listing: SiteListing | None) -> _Remembered | None:
        """What was remembered for `asked` (site, models named: none for the whole site), if no
        watched folder changed since, each is where it was, and a whole site is listed as it
        was; else None."""
        if self.events is None or not self._selections:
            return None
        self.events.refresh()
        kept = self._selections.get(asked)
        if kept is None or kept.epoch != self.events.epoch or kept.listing is not listing:
            return None
        if not all(_still_at(vouched.path, vouched.identity) for vouched in kept.vouched.values()):
            return None
        return kept

    def remember(self, asked: tuple[str, tuple[str, ...]], made: _Remembered) -> Selection:
        """Keep `made` (its `vouched` folders from `recall` or `kept_before`, as of its `epoch`);
        returns its selection, or the one kept before if it holds the same files (keys made)."""
        if self.events is None or not made.vouched:
            return made.selection
        kept = self._selections.get(asked)
        if kept is not None and kept.selection is not made.selection and _same_files(kept.selection, made.selection):
            made = replace(made, selection=kept.selection)
        self._selections[asked] = made
        self._selections.move_to_end(asked)
        while len(self._selections) > MAX_SELECTIONS_KEPT:
            self._selections.popitem(last=False)
        return made.selection

    def forget(self, asked: tuple[str, tuple[str, ...]]) -> None:
        self._selections.pop(asked, None)

    def epoch(self) -> int | None:
        """`FolderEvents.epoch` as of the last refresh; None without inotify."""
        return None if self.events is None else self.events.epoch

    def known(self, chosen: Sequence[tuple[FolderListing, str]]) -> list[tuple[SelectedFile, ...] | None]:
        """Each folder's kept files if they still hold, else None."""
        if self.events is None or not chosen:
            return [None] * len(chosen)
        self.events.refresh()
        out: list[tuple[SelectedFile, ...] | None] = []
        for folder, _ in chosen:
            path = str(folder.path)
            kept = self._folders.get(path)
            if (
                kept is not None
                and kept.identity == folder.identity  # the directory the stamp watches, not one put in its place
                and _same_media(kept.listing, folder)
                and self.events.still(path, kept.stamp)
            ):
                if kept.listing is not folder:  # listed again alike: compared by identity from now on
                    self._folders[path] = kept._replace(listing=folder)
                out.append(kept.files)
            else:
                out.append(None)
        return out

    def moment(self) -> int | None:
        """Now, in stamps (for `kept_before`); None without inotify."""
        return None if self.events is None else self.events.newest_stamp

    def kept_before(
        self,
        chosen: Sequence[tuple[FolderListing, str]],
        known: Sequence[tuple[SelectedFile, ...] | None],
        moment: int | None,
    ) -> list[tuple[str, _Vouched]]:
        """The folders of `chosen` (by model) whose files `known` holds under a stamp taken no
        later than `moment` (so a listing read after `moment` saw everything the stamp vouches for)."""
        if moment is None:
            return []
        out = []
        for (folder, model), files in zip(chosen, known, strict=True):
            path = str(folder.path)
            kept = self._folders.get(path)
            if files is not None and kept is not None and kept.stamp <= moment:
                out.append((model, _Vouched(files, path, kept.identity)))
        return out

    def stamps(self, chosen: Sequence[tuple[FolderListing, str]]) -> list[int | None]:
        if self.events is None:
            return [None] * len(chosen)
        return [self.events.stamp(str(folder.path), renew=True) for folder, _ in chosen]

    def keep(self, folder: FolderListing, stamp: int, files: tuple[SelectedFile, ...], identity: Identity) -> None:
        path = str(folder.path)
        self._folders[path] = _Kept(folder, stamp, files, identity)
        self._folders.move_to_end(path)
        assert self.events is not None
        while len(self._folders) > self.events.max_folders:  # past it, the oldest are no longer watched
            self._folders.popitem(last=False)

    def close(self) -> None:
        self._folders.clear()
        self._selections.clear()
        if self.events is not None:
            self.events.close()


def _still_at(path: str, identity: Identity) -> bool:
    """Whether `path` still leads to the directory `identity` names."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == identity


def _same_files(kept: Selection, made: Selection) -> bool:
    return kept.models == made.models and kept.files == made.files


def _same_media(kept: FolderListing, now: FolderListing) -> bool:
    """The same media listed (names, sizes, mtimes: the catalog re-reads a folder as new for many reasons)."""
    return kept is now or (kept.images == now.images and kept.videos == now.videos)


async def readable(selection: Selection) -> Selection:
    """`selection` (from `select`) with every file opened: those the server cannot read as
    regular files left out (what a build may promise), sizes and mtimes as of now."""
    files = await asyncio.to_thread(_open_files, selection.files)
    return replace(selection, files=tuple(files))


Stated = tuple[tuple[SelectedFile, ...], bool, Identity | None]


def _stat_folders(chosen: Sequence[tuple[FolderListing, str]]) -> list[Stated]:
    """Each folder's regular files among its listed media (one `stat` each: a cache hit needs
    no more), whether they are its own (no symbolic link, no second hard link), and the
    folder's identity (None: the folder went since the listing)."""
    return [_stat_folder(folder, model) for folder, model in chosen]


def _stat_folder(listing: FolderListing, model: str) -> Stated:
    prefix = f"{listing.path}{os.sep}"
    try:
        folder_fd = os.open(listing.path, FOLDER_FLAGS)  # stats relative to it
    except OSError:
        return (), False, None  # the folder went since the listing
    folder_info = os.fstat(folder_fd)
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
    return tuple(out), exclusive, (folder_info.st_dev, folder_info.st_ino)


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
    """The cache key of `selection` in format `fmt`, made once per selection and format."""
    key = selection.keys.get(fmt)
    if key is None:
        models = "\x00*" if selection.whole_site else "\x00".join(selection.models)
        head = f"{FORMAT_VERSION}\x00{fmt}\x00{selection.site}\x00{models}\x01"
        hasher = blake3.blake3(head.encode(errors="surrogateescape"))
        hasher.update(b"".join([f.key_line for f in selection.files]))  # one update, not one per file
        key = selection.keys[fmt] = hasher.hexdigest()[:40]
    return key


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
