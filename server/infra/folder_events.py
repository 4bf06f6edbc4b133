"""Knowing, strictly, that nothing in a folder changed since a moment: inotify stamps.

`stamp(folder)` starts watching a folder (inotify, on the folder itself: its entries and every
file in it) and returns a number; after `refresh()` (which reads what the kernel queued, one
non-blocking `ioctl` when nothing did), `still(folder, stamp)` is true only if no file of the
folder was written, truncated, touched, chmod'ed, created, deleted or renamed since the stamp
was taken, and the folder itself was neither moved nor deleted nor unmounted. The kernel queues
an event before the call that caused it returns, so a change made before a request arrived is
seen by that request: what a fresh `stat` of every file would tell, for one syscall. And
`epoch` moves on with any event at all: while it stays put, every stamp that held still holds,
which vouches for many folders at once (a whole site's download) with no check per folder.

Only folders on local file systems are stamped (inotify does not see a NAS's other clients,
nor FUSE's): anything else gets no stamp and the caller stats as before. So does everything
when inotify is missing or its watches run out. A queue overflow invalidates every stamp.
Limits the caller must respect: an event is reported for the folder a file was changed
through, so a file reached by a symbolic link or with a second hard link elsewhere is not
covered by its own folder's stamp (the caller does not trust such folders, or trusts them only
while the stamps of the folders of all the file's names hold). A hard link made in a watched
folder is told to that folder alone, not to the file's other folders: so every stamp moves
when a file with more than one name appears in a watched folder. Not seen: a second name made
outside every watched folder, or made, written through and removed before the next `refresh`;
and writes through `mmap` (downloaders and editors write files, they do not map them).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
from collections import OrderedDict

log = logging.getLogger("archive_catalog")

try:
    from inotify_simple import INotify
    from inotify_simple import flags as _flags
except (ImportError, OSError):  # not Linux, or no libc inotify: every caller stats instead
    INotify = None

MAX_WATCHED_FOLDERS = 4096  # the oldest stamped folder stops being watched past this (watches are a per-user budget)

# statfs f_type of local file systems, whose every change goes through this kernel
_LOCAL_FILE_SYSTEMS = frozenset(
    {
        0xEF53,  # ext2/3/4
        0x58465342,  # xfs
        0x9123683E,  # btrfs
        0x2FC12FC1,  # zfs
        0xF2F52010,  # f2fs
        0xCA451A4E,  # bcachefs
        0x3153464A,  # jfs
        0x52654973,  # reiserfs
        0x3434,  # nilfs2
        0x01021994,  # tmpfs
        0x858458F6,  # ramfs
        0x794C7630,  # overlayfs (changes made through it)
    }
)


class _StatFs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 256)]  # f_type first, the rest unread


def _load_statfs() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    try:
        statfs = ctypes.CDLL(name, use_errno=True).statfs
    except (OSError, AttributeError):
        return None
    statfs.argtypes = (ctypes.c_char_p, ctypes.POINTER(_StatFs))
    statfs.restype = ctypes.c_int
    return statfs


_statfs = _load_statfs()


def is_local_file_system(folder: str) -> bool:
    """Whether `folder` lives on a file system whose changes this kernel always sees."""
    if _statfs is None:
        return False
    info = _StatFs()
    if _statfs(os.fsencode(folder), ctypes.byref(info)) != 0:
        return False
    return (info.f_type & 0xFFFFFFFF) in _LOCAL_FILE_SYSTEMS


class FolderEvents:
    """Stamps of watched folders, moved on by every inotify event in them."""

    def __init__(self, max_folders: int = MAX_WATCHED_FOLDERS) -> None:
        self.max_folders = max_folders
        self._inotify: INotify | None = None  # opened by the first stamp (an app never used opens none)
        self._unavailable = INotify is None
        self._watches: OrderedDict[str, tuple[int, int]] = OrderedDict()  # folder -> (watch, stamp)
        self._folders: dict[int, str] = {}  # watch -> folder
        self._next = 0
        self._epoch = 0  # moved on whenever a stamp may have stopped holding (see `epoch`)

    def _new_stamp(self) -> int:
        self._next += 1
        return self._next

    def stamp(self, folder: str, renew: bool = False) -> int | None:
        """A stamp for `folder` from now on (its watch started if need be), or None when the
        folder cannot be watched reliably: then nothing about it may be assumed. Events still
        queued from before only make the stamp older than it could be (`still` false sooner):
        take it before reading the folder, and `refresh` before asking `still`.

        A watch follows its directory, not the path: with `renew`, a watched path that now
        leads to another directory (one moved or copied into its place, which tells the old
        one's watch nothing) is watched anew (one `inotify_add_watch`, which gives the
        directory's own watch back when it is the same)."""
        if self._inotify is None and not self._open():
            return None
        assert self._inotify is not None
        watched = self._watches.get(folder)
        if watched is not None:
            if not renew or self._watches_still(folder, watched[0]):
                self._watches.move_to_end(folder)
                return watched[1]
            self._forget(folder)
        if not is_local_file_system(folder):
            return None
        try:
            watch = self._inotify.add_watch(folder, _WATCH_MASK)
        except OSError as exc:  # gone, unreadable, or no watches left: the caller stats
            log.debug("Not watching %s: %s", folder, exc)
            return None
        stale = self._folders.get(watch)
        if stale is not None:  # the same directory under another path (a link): one watch, one name
            self._forget(stale, remove=False)
        stamp = self._new_stamp()
        self._watches[folder] = (watch, stamp)
        self._folders[watch] = folder
        while len(self._watches) > self.max_folders:
            self._forget(next(iter(self._watches)))
        return stamp

    def _watches_still(self, folder: str, watch: int) -> bool:
        """Whether `folder` still leads to the directory `watch` watches."""
        assert self._inotify is not None
        try:
            return bool(self._inotify.add_watch(folder, _WATCH_MASK) == watch)
        except OSError:
            return False

    def _open(self) -> bool:
        if self._unavailable:
            return False
        try:
            self._inotify = INotify(nonblocking=True)
        except OSError as exc:  # instances exhausted: nothing is stamped, callers stat
            log.warning("inotify unavailable (%s): download cache hits stat every file", exc)
            self._unavailable = True
        return self._inotify is not None

    @property
    def newest_stamp(self) -> int:
        """The newest stamp given so far (stamps only grow): one no newer was taken before now."""
        return self._next

    @property
    def epoch(self) -> int:
        """A number that moves on whenever any stamp may have stopped holding (an event taken in
        by `refresh`, a folder no longer watched, `close`): while it stays put after a `refresh`,
        every `still` that held when it was read holds still, with no check per folder."""
        return self._epoch

    def still(self, folder: str, stamp: int) -> bool:
        """Whether nothing in `folder` changed since `stamp` (as of the last `refresh`)."""
        watched = self._watches.get(folder)
        return watched is not None and watched[1] == stamp

    def refresh(self) -> None:
        """Take in the events the kernel has queued: each moves its folder's stamp on."""
        if self._inotify is None or not self._watches:
            return
        linked = False
        for event in self._inotify.read(timeout=0):
            self._epoch += 1
            if event.mask & _flags.Q_OVERFLOW:
                for folder in list(self._watches):
                    self._forget(folder)
                continue
            changed = self._folders.get(event.wd)
            if changed is None:
                continue
            if event.mask & (_flags.IGNORED | _flags.DELETE_SELF | _flags.MOVE_SELF | _flags.UNMOUNT):
                self._forget(changed, remove=not event.mask & _flags.IGNORED)
            elif not linked and event.mask & _NAMED_IN and not event.mask & _flags.ISDIR:
                linked = _has_other_names(changed, event.name)
            if changed in self._watches:
                self._watches[changed] = (event.wd, self._new_stamp())
        if linked:  # once, however many links were made (a dedupe tool hard-linking thousands)
            self._move_every_stamp()

    def _move_every_stamp(self) -> None:
        """A file of some folder got a name here (a hard link made or moved in): a write through
        this name is told to this folder only, and the link to none of the file's other folders,
        so no stamp may hold."""
        self._epoch += 1
        for folder, (watch, _stamp) in self._watches.items():
            self._watches[folder] = (watch, self._new_stamp())

    def _forget(self, folder: str, remove: bool = True) -> None:
        self._epoch += 1
        watch, _ = self._watches.pop(folder)
        self._folders.pop(watch, None)
        if remove and self._inotify is not None:
            with contextlib.suppress(OSError):  # already gone with its folder
                self._inotify.rm_watch(watch)

    def close(self) -> None:
        self._epoch += 1
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None
        self._unavailable = True  # closed for good: a late request stats
        self._watches.clear()
        self._folders.clear()


def _has_other_names(folder: str, name: str) -> bool:
    """Whether the file `name` in `folder` has a second hard link (not if it is gone already)."""
    try:
        return os.stat(os.path.join(folder, name), follow_symlinks=False).st_nlink > 1
    except OSError:
        return False


_NAMED_IN = 0 if INotify is None else _flags.CREATE | _flags.MOVED_TO  # a new name in the folder (not a sub-folder)

_WATCH_MASK = (
    0
    if INotify is None
    else (
        _flags.MODIFY
        | _flags.ATTRIB
        | _flags.CLOSE_WRITE
        | _flags.CREATE
        | _flags.DELETE
        | _flags.MOVED_FROM
        | _flags.MOVED_TO
        | _flags.DELETE_SELF
        | _flags.MOVE_SELF
    )
)
