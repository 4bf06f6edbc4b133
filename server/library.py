"""The library on disk: sites, models and media, and the one safe path resolver.

Pure domain code (no aiohttp). A *site* is a folder directly under the root; a *model* is any
folder under a site that directly holds media, named by its path relative to the site; the
*media* of a model are the image and video files directly in its folder. Hidden names,
partial downloads and sidecar files are never media. Every route that touches the disk goes
through `Library.resolve`, which refuses traversal, absolute paths, backslashes, NUL bytes,
hidden segments and symlinks whose target leaves the root, before anything is opened.
"""

from __future__ import annotations

import os
import re
import stat
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from server.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".bmp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".webm", ".mov", ".mkv", ".m4v", ".avi"})
CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".bmp": "image/bmp",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
}
# A folder changed less than this long before we listed it may change again within the same
# timestamp tick (coarse clocks, FAT, network mounts): such a listing is never trusted later.
RACY_WINDOW_NS = 2_000_000_000
_DIGITS = re.compile(r"(\d+)")
MAX_NAME_BYTES = 255  # NAME_MAX on Linux filesystems


def natural_key(name: str) -> list[int | str]:
    """Case-insensitive natural order: img2 before img10, Ana beside ana. The split alternates
    text and digit runs, so every other part is a number (text such as "²" is digit-like to
    `str.isdigit` but not a decimal: it stays text)."""
    parts: list[int | str] = list(_DIGITS.split(name.casefold()))
    parts[1::2] = map(int, parts[1::2])
    return parts


_KIND_BY_EXTENSION = {**dict.fromkeys(IMAGE_EXTENSIONS, "image"), **dict.fromkeys(VIDEO_EXTENSIONS, "video")}
FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC  # a folder opened to read it, or relative to it


# For ASCII text: digits -> "0", NUL (the separator of names joined) kept, anything else -> "a".
_DIGIT_MASK = str.maketrans({chr(c): "0" if chr(c).isdigit() else "\0" if c == 0 else "a" for c in range(128)})


def _masked(names: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """Each name lowercased and its digit mask (digits at the same places, same length:
    img_0001.jpg and img_0002.png share one), each list from one C-speed call over all names
    joined; None unless the names are ASCII (NUL never occurs in a name or a path).

    Names with the same digit mask compare in natural order exactly as their lowercase text
    (`casefold` for ASCII) compares, so among them a plain string comparison decides."""
    joined = "\0".join(names)
    if not joined.isascii():
        return None
    masks = joined.translate(_DIGIT_MASK).split("\0")
    if len(masks) != len(names):
        return None
    return joined.lower().split("\0"), masks


def natural_min(names: Sequence[str]) -> str:
    """`min(names, key=natural_key)` (the first such name on ties), cheaper for ASCII names:
    in each group of one digit mask (`_masked`) a plain string comparison finds the winner;
    only the groups' winners (usually one to three) need a natural key.
    """
    masked = _masked(names)
    if masked is None:
        return min(names, key=natural_key)
    folded, masks = masked
    if masks.count(masks[0]) == len(masks):  # one group, the usual case: all at C speed
        return names[folded.index(min(folded))]
    winners: dict[str, int] = {}
    for index, mask in enumerate(masks):
        best = winners.get(mask)
        if best is None or folded[index] < folded[best]:
            winners[mask] = index
    if len(winners) == 1:
        return names[next(iter(winners.values()))]
    return min((names[index] for index in sorted(winners.values())), key=natural_key)


def natural_order(names: Sequence[str]) -> list[int]:
    """The indexes of `names` (or paths) in natural order (`natural_key`'s, ties in their order),
    cheaper when they are ASCII and share one digit mask (a folder of img_0001…img_0147.jpg):
    then one sort of their lowercase text at C speed (`_masked`); otherwise each name gets its
    natural key."""
    if len(names) == 2:  # most duplicate groups: one comparison, without joining and splitting
        first, second = names
        if first.isascii() and second.isascii() and first.translate(_DIGIT_MASK) == second.translate(_DIGIT_MASK):
            return [1, 0] if second.lower() < first.lower() else [0, 1]
        return [1, 0] if natural_key(second) < natural_key(first) else [0, 1]
    masked = _masked(names) if len(names) > 1 else None
    if masked is not None and masked[1].count(masked[1][0]) == len(names):
        return sorted(range(len(names)), key=masked[0].__getitem__)
    keys = [natural_key(name) for name in names]
    return sorted(range(len(names)), key=keys.__getitem__)


def _natural_files(media: Sequence[Scanned], kind: str) -> list[MediaFile]:
    """The scanned files of one kind as MediaFiles, in natural order."""
    files = [MediaFile(name, size, mtime, kind) for name, file_kind, size, mtime in media if file_kind == kind]
    return [files[index] for index in natural_order([file.name for file in files])]


def media_kind(name: str) -> str | None:
    """'image', 'video' or None for a file name (or the last segment of a path).

    Hidden names and other extensions are not media. `sort_entries`, behind both walks
    (listings and the duplicate scan), applies the same rule to every file it meets.
    """
    slash = name.rfind("/")
    if slash >= 0:
        name = name[slash + 1 :]
    dot = name.rfind(".")
    if dot < 1 or name[0] == ".":  # no extension, or hidden
        return None
    return _KIND_BY_EXTENSION.get(name[dot:].lower())


def search_fold(text: str) -> str:
    """The search rule: `q` matches a name when `search_fold(q)` is a substring of `search_fold(name)`.

    Folds case (casefold: ß ~ ss), Unicode normalisation (folders copied from macOS are NFD)
    and accents (combining marks dropped after a compatibility decomposition), so `joao`,
    `JOÃO` and an NFD `joão` all find `joão`. ASCII text only needs lower-casing.
    """
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def library_unavailable() -> ServiceUnavailable:
    """The contract's 503 for a library root that is missing or unreadable."""
    return ServiceUnavailable(
        "The library folder is missing or unreadable (is the drive mounted?).", code="library_unavailable"
    )


# One folder's entries, sorted by `sort_entries`: media as (entry, kind, is a symlink) and
# sub-folders as (entry, is a symlink).
MediaEntry = tuple[os.DirEntry[str], str, bool]
FolderEntry = tuple[os.DirEntry[str], bool]


def sort_entries(
    folder: str, entries: Iterable[os.DirEntry[str]], root_prefix: str
) -> tuple[list[MediaEntry], list[FolderEntry]]:
    """Split one folder's scandir entries into media candidates and sub-folders.

    The one classification behind every walk (site listings, site names, the duplicate scan):
    hidden names are skipped; a symlink counts only if its real target is inside the root
    (`root_prefix`: the root's real path and a trailing separator); a directory is a folder
    whatever its name (`studio.mov/` is walked, not taken for a video); anything else is a
    media candidate by `media_kind`'s rule and table. The caller stats the candidates (its own
    way) and keeps regular files. No system call for a plain file or folder where the file system reports
    entry types (a symlink costs a realpath, and a stat to see whether it is a folder).
    """
    media: list[MediaEntry] = []
    folders: list[FolderEntry] = []
    kinds, realpath, join = _KIND_BY_EXTENSION, os.path.realpath, os.path.join
    for entry in entries:
        name = entry.name
        if name[0] == ".":  # hidden (a name is never empty)
            continue
        dot = name.rfind(".")  # media_kind(name) for a name that is not hidden, inlined: the hot loop
        kind = kinds.get(name[dot:].lower()) if dot > 0 else None
        try:
            if kind is not None and entry.is_file(follow_symlinks=False):
                media.append((entry, kind, False))  # the common case: a plain file, one check
                continue
            if entry.is_symlink():
                if not realpath(join(folder, name)).startswith(root_prefix):
                    continue
                if entry.is_dir():
                    folders.append((entry, True))
                elif kind is not None:
                    media.append((entry, kind, True))
            elif entry.is_dir(follow_symlinks=False):
                folders.append((entry, False))
        except OSError:
            continue
    return media, folders


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


Scanned = tuple[str, str, int, float]  # one media file as a scan sees it: name, kind, size, mtime


@dataclass(frozen=True, slots=True)
class MediaFile:
    name: str
    size: int
    mtime: float
    kind: str


@dataclass(frozen=True, slots=True)
class FolderListing:
    """One folder's media and sub-folders, read with a single scandir."""

    path: Path
    mtime_ns: int
    racy: bool
    images: tuple[MediaFile, ...]
    videos: tuple[MediaFile, ...]
    subfolders: tuple[tuple[str, Path], ...] = ()
    identity: tuple[int, int] = (0, 0)  # the directory read: (st_dev, st_ino)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.images) + sum(f.size for f in self.videos)

    @property
    def mtime(self) -> float:
        return max((f.mtime for f in (*self.images, *self.videos)), default=0.0)


@dataclass(frozen=True, slots=True)
class ModelSummary:
    name: str
    images: int
    videos: int
    bytes: int
    mtime: float
    cover: str | None  # first image (natural order), else first video


@dataclass(frozen=True, slots=True)
class SiteListing:
    """Every model of a site, in natural order, and each folder walked with its mtime."""

    site: str
    models: tuple[ModelSummary, ...]
    folders: dict[str, int] = field(default_factory=dict)  # real path -> mtime_ns (-1: racy)

    @property
    def files(self) -> int:
        return sum(m.images + m.videos for m in self.models)

    @property
    def bytes(self) -> int:
        return sum(m.bytes for m in self.models)


def split_relative(relative: str) -> list[str]:
    """Split a client-given relative path into safe segments, or raise 400/404."""
    if "\x00" in relative:
        raise BadRequest("The path holds a NUL byte.", code="invalid_path")
    if "\\" in relative:
        raise BadRequest("Backslashes are not allowed in paths.", code="invalid_path")
    if relative.startswith("/") or re.match(r"^[A-Za-z]:", relative):
        raise BadRequest("Absolute paths are not allowed.", code="invalid_path")
    segments = relative.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise BadRequest("Empty, '.' and '..' path segments are not allowed.", code="invalid_path")
        if len(segment.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise NotFound("No such item in the library (a name there is longer than any file system allows).")
        if segment.startswith("."):
            raise NotFound("No such item in the library.")
    return segments


class Library:
    """Read access to the library folder; all paths handed out are inside `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self._root_prefix = str(self.root).rstrip(os.sep) + os.sep

    # -- safety -----------------------------------------------------------------------

    def contains(self, real_path: str) -> bool:
        return real_path == str(self.root) or real_path.startswith(self._root_prefix)

    def resolve(self, *relative_parts: str) -> Path:
        """Join client-given parts under the root; the real path must stay inside it."""
        segments: list[str] = []
        for part in relative_parts:
            segments.extend(split_relative(part))
        real = os.path.realpath(os.path.join(self.root, *segments))
        if not self.contains(real):
            raise NotFound("No such item in the library.")
        return Path(real)

    def entry(self, *relative_parts: str) -> Path:
        """The directory entry itself (a symlink stays a symlink), inside a resolved parent.

        Deletes move the entry the user named: deleting a link removes the link, never the
        file it points to. The entry's target must still be inside the root.
        """
        segments: list[str] = []
        for part in relative_parts:
            segments.extend(split_relative(part))
        parent = self.resolve(*segments[:-1]) if len(segments) > 1 else self.root
        path = parent / segments[-1]
        if not self.contains(os.path.realpath(path)):
            raise NotFound("No such item in the library.")
        return path

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root)).replace(os.sep, "/")

    def check_available(self) -> None:
        """Raise 503 when the root is missing or unreadable (an unmounted drive)."""
        try:
            with os.scandir(self.root) as entries:
                next(entries, None)
        except OSError:
            raise library_unavailable() from None

    def root_mtime_ns(self) -> int:
        """The root folder's mtime, or 503 when it is missing."""
        try:
            return os.stat(self.root).st_mtime_ns
        except OSError:
            raise library_unavailable() from None

    def site_dir(self, site: str) -> Path:
        if "/" in site:
            raise BadRequest("A site name cannot contain '/'.", code="invalid_path")
        path = self.resolve(site)
        if not _is_dir(path):
            self.check_available()
            raise NotFound(f"Unknown site {site!r}.")
        return path

    def model_dir(self, site: str, model: str) -> Path:
        self.site_dir(site)
        path = self.resolve(site, model)
        if not _is_dir(path):
            raise NotFound(f"Unknown model {model!r} in site {site!r}.")
        return path

    def media_file(self, site: str, model: str, name: str) -> Path:
        if "/" in name:
            raise BadRequest("A media path is a file name inside the model folder.", code="invalid_path")
        path = self.model_dir(site, model) / name
        return self.media_path(self.relative(path))

    def media_path(self, relative: str) -> Path:
        """A media file given by its path relative to the root (site/model/.../file)."""
        path = self.resolve(relative)
        if media_kind(path.name) is None or media_kind(relative.rsplit("/", 1)[-1]) is None:
            raise NotFound("No such media file.")
        if not _is_file(path):
            self.check_available()
            raise NotFound("No such media file.")
        return path

    # -- listing ----------------------------------------------------------------------

    def site_names(self) -> list[str]:
        try:
            with os.scandir(self.root) as entries:
                _media, folders = sort_entries(str(self.root), entries, self._root_prefix)
        except OSError:
            raise library_unavailable() from None
        names = [entry.name for entry, _is_link in folders]
        names.sort(key=natural_key)
        return names

    def list_folder(self, folder: Path, now_ns: int | None = None) -> FolderListing:
        """Media (with size and mtime) and sub-folders of one folder, in natural order."""
        fd = os.open(folder, FOLDER_FLAGS)
        try:
            info = os.fstat(fd)
            media, subfolders = self._scan(str(folder), fd)
        finally:
            os.close(fd)
        mtime_ns = info.st_mtime_ns
        racy = (now_ns if now_ns is not None else time.time_ns()) - mtime_ns < RACY_WINDOW_NS
        images, videos = _natural_files(media, "image"), _natural_files(media, "video")
        folders = tuple((name, Path(path)) for name, path, _is_link in subfolders)
        identity = (info.st_dev, info.st_ino)
        return FolderListing(folder, mtime_ns, racy, tuple(images), tuple(videos), folders, identity)

    def read_model(self, site: str, model: str) -> FolderListing:
        """A model folder's listing; 404 unknown, 403 unreadable, 503 when the library is gone."""
        path = self.model_dir(site, model)
        try:
            return self.list_folder(path)
        except (FileNotFoundError, NotADirectoryError):  # removed or replaced since model_dir
            self.check_available()
            raise NotFound(f"Unknown model {model!r} in site {site!r}.") from None
        except OSError:
            self.check_available()
            raise Forbidden(
                f"The folder of model {model!r} in site {site!r} cannot be read (check its permissions).",
                code="model_unreadable",
            ) from None

    def walk_site(self, site: str) -> SiteListing:
        """Every model under a site (any folder directly holding media), by relative path.

        The hot part of a cold listing: one scandir and one stat per file, summaries without
        building or sorting per-file objects, and real paths derived from the parent's (only
        a symlinked folder needs `realpath`). A folder that cannot be read is left out; if
        the library itself went away meanwhile, the walk answers 503 instead of a partial
        listing.
        """
        site_path = str(self.site_dir(site))  # already a real path
        now_ns = time.time_ns()
        models: list[ModelSummary] = []
        folders: dict[str, int] = {}
        seen: set[tuple[int, int]] = set()
        pending: list[tuple[str, str, str]] = [(site_path, site_path, "")]  # path, real path, model name
        failed = False
        while pending:
            folder, real, relative = pending.pop()
            try:
                fd = os.open(folder, FOLDER_FLAGS)
            except OSError:
                failed = True
                continue
            try:
                info = os.fstat(fd)
                identity = (info.st_dev, info.st_ino)
                if identity in seen:
                    continue
                seen.add(identity)
                media, subfolders = self._scan(folder, fd)
            except OSError:
                failed = True
                continue
            finally:
                os.close(fd)
            racy = now_ns - info.st_mtime_ns < RACY_WINDOW_NS
            folders[real] = -1 if racy else info.st_mtime_ns
            if relative and media:
                models.append(_summarize_media(relative, media))
            for name, path, is_symlink in subfolders:
                child_real = os.path.realpath(path) if is_symlink else f"{real}/{name}"
                pending.append((path, child_real, f"{relative}/{name}" if relative else name))
        if failed:
            self.check_available()
        models.sort(key=lambda m: natural_key(m.name))
        return SiteListing(site, tuple(models), folders)

    def _scan(self, folder: str, fd: int) -> tuple[list[Scanned], list[tuple[str, str, bool]]]:
        """One scandir of the open folder `fd` (at `folder`): media as (name, kind, size, mtime),
        sub-folders as (name, path, is a symlink).

        `sort_entries` classifies; media are regular files (symlinks followed), each stat'ed
        relative to the folder (`fstatat`: no walk of the whole path per file).
        """
        with os.scandir(fd) as entries:
            candidates, folders = sort_entries(folder, entries, self._root_prefix)
        media: list[Scanned] = []
        stat_at, is_regular = os.stat, stat.S_ISREG
        for entry, kind, _is_link in candidates:
            name = entry.name
            try:
                info = stat_at(name, dir_fd=fd)
            except OSError:
                continue
            if is_regular(info.st_mode):  # keep two numbers, not the whole stat result
                media.append((name, kind, info.st_size, info.st_mtime))
        join = os.path.join
        return media, [(entry.name, join(folder, entry.name), is_link) for entry, is_link in folders]


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _summarize_media(name: str, media: list[Scanned]) -> ModelSummary:
    """A model's counts, bytes, newest mtime and cover (first image in natural order, else first video)."""
    image_names = [item[0] for item in media if item[1] == "image"]
    cover = natural_min(image_names or [item[0] for item in media])
    return ModelSummary(
        name=name,
        images=len(image_names),
        videos=len(media) - len(image_names),
        bytes=sum([item[2] for item in media]),
        mtime=max([item[3] for item in media]),
        cover=cover,
    )
