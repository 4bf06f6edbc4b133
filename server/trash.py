"""The trash: every delete is a rename into `<site>/.trash/<id>/data`, restorable until emptied.

Each item is a folder holding `meta.json` (what it was and where it came from) and `data` (the
moved file or model folder). The trash lives inside its site so a move is a same-filesystem
rename: atomic, instant, and nothing is copied. Crash safety comes from the order of steps:
the metadata is written (atomically) before the rename, and an item folder without `data` is
an interrupted move or restore whose original is still (or again) in place, so `recover`
removes it (a permanent delete renames `data` away first, for the same reason). The items
listed are therefore exactly the items that hold data. Bulk restores and deletes look every id
up in one pass over the sites and answer per id, so one unknown or blocked item never fails
the others. A missing
library folder (an unmounted drive) is the 503 `library_unavailable` of every other route,
never an empty trash.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from server.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from server.infra.atomic import write_atomically
from server.infra.sizes import folder_size
from server.library import Library, media_kind, natural_min

TRASH_DIR = ".trash"
_ID = re.compile(r"^[0-9a-f]{12}-[0-9a-f]{8}$")
_DOOMED = "deleting"  # `data` renamed so: the item is gone from every listing before its bytes are


@dataclass(frozen=True, slots=True)
class TrashItem:
    id: str
    kind: str  # "file" | "model"
    site: str
    model: str
    path: str  # the file name for a file, the model path for a model
    original: str  # path relative to the library root
    size: int
    deleted_at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Trash:
    def __init__(self, library: Library) -> None:
        self.library = library

    # -- moving in --------------------------------------------------------------------

    def delete_model(self, site: str, model: str) -> TrashItem:
        folder = self.library.model_dir(site, model)
        return self._move(self.library.entry(site, model), "model", folder_size(folder))

    def delete_file(self, site: str, model: str, name: str) -> TrashItem:
        target = self.library.media_file(site, model, name)
        return self._move(self.library.entry(site, model, name), "file", target.stat().st_size)

    def delete_media_path(self, relative: str) -> TrashItem:
        """A media file named by its path relative to the root (as duplicate groups list them)."""
        target = self.library.media_path(relative)
        return self._move(self.library.entry(relative), "file", target.stat().st_size)

    def _move(self, source: Path, kind: str, size: int) -> TrashItem:
        original = self.library.relative(source)
        site, _, rest = original.partition("/")
        if not rest:
            raise BadRequest("A whole site cannot be moved to the trash.")
        model, name = (rest, "") if kind == "model" else (rest.rpartition("/")[0], rest.rpartition("/")[2])
        item = TrashItem(
            id=f"{time.time_ns() // 1000:012x}"[-12:] + "-" + secrets.token_hex(4),
            kind=kind,
            site=site,
            model=model,
            path=name or model,
            original=original,
            size=size,
            deleted_at=time.time(),
        )
        item_dir = self.library.root / site / TRASH_DIR / item.id
        try:
            item_dir.mkdir(parents=True)
            write_atomically(item_dir / "meta.json", orjson.dumps(item.to_json()))
            os.rename(source, item_dir / "data")
        except OSError as exc:
            shutil.rmtree(item_dir, ignore_errors=True)
            if exc.errno == errno.EXDEV:
                raise Conflict(
                    f"{original!r} is on another drive than its site's trash; nothing was moved.", code="cross_device"
                ) from None
            if isinstance(exc, FileNotFoundError):
                raise NotFound(f"{original!r} is no longer in the library.") from None
            raise ServiceUnavailable(f"Could not move {original!r} to the trash ({exc.strerror}).") from None
        return item

    # -- looking ----------------------------------------------------------------------

    def _item_dirs(self) -> list[Path]:
        dirs: list[Path] = []
        try:
            sites = [e for e in os.scandir(self.library.root) if e.is_dir(follow_symlinks=False)]
        except OSError as exc:
            self.library.check_available()  # a missing root: the same 503 as every other route
            raise ServiceUnavailable(f"Could not read the library folder ({exc.strerror}).") from None
        for site in sites:
            trash = Path(site.path) / TRASH_DIR
            try:
                dirs.extend(Path(e.path) for e in os.scandir(trash) if _ID.match(e.name) and e.is_dir())
            except OSError:
                continue
        return dirs

    @staticmethod
    def _read(item_dir: Path) -> TrashItem | None:
        if not os.path.lexists(item_dir / "data"):
            return None
        try:
            return TrashItem(**orjson.loads((item_dir / "meta.json").read_bytes()))
        except (OSError, ValueError, TypeError):
            return None

    def items(self) -> list[TrashItem]:
        found = [item for d in self._item_dirs() if (item := self._read(d)) is not None]
        found.sort(key=lambda item: item.deleted_at, reverse=True)
        return found

    def _locate(self, item_ids: list[str]) -> dict[str, tuple[Path, TrashItem]]:
        """The item folder and metadata of each known id (checked first), in one pass over the sites."""
        for item_id in item_ids:
            if not _ID.match(item_id):
                raise BadRequest("A trash id looks like '0123456789ab-89abcdef'.")
        wanted = set(item_ids)
        found: dict[str, tuple[Path, TrashItem]] = {}
        for item_dir in self._item_dirs():
            if item_dir.name in wanted and (item := self._read(item_dir)) is not None:
                found[item_dir.name] = (item_dir, item)
        return found

    def _find(self, item_id: str) -> tuple[Path, TrashItem]:
        found = self._locate([item_id]).get(item_id)
        if found is None:
            raise NotFound(f"No trash item {item_id!r}.")
        return found

    def preview_source(self, item_id: str) -> tuple[Path, bool]:
        """The media file that pictures an item, and whether it is a video.

        A file shows itself, a model its first image in natural order. The real path must stay
        inside the site's trash: an item that is (or holds) a link to elsewhere shows nothing.
        """
        item_dir, item = self._find(item_id)
        trash = os.path.realpath(item_dir.parent) + os.sep
        data = os.path.realpath(item_dir / "data")
        if not data.startswith(trash):
            raise NotFound(f"Trash item {item_id!r} has no picture.")
        if item.kind == "file":
            kind = media_kind(item.path)
            if kind is None or not os.path.isfile(data):
                raise NotFound(f"Trash item {item_id!r} has no picture.")
            return Path(data), kind == "video"
        try:
            with os.scandir(data) as entries:
                images = [e.name for e in entries if media_kind(e.name) == "image" and e.is_file()]
        except OSError:
            images = []
        source = os.path.realpath(os.path.join(data, natural_min(images))) if images else ""
        if not source.startswith(trash):
            raise NotFound(f"Trash item {item_id!r} has no picture.")
        return Path(source), False

    # -- moving out -------------------------------------------------------------------

    def restore(self, item_id: str) -> TrashItem:
        return self._restore(*self._find(item_id))

    def restore_many(self, item_ids: list[str]) -> tuple[list[TrashItem], list[tuple[str, str]]]:
        """Restore each id; answers the items restored and `(id, why not)` for the others."""
        found = self._locate(item_ids)
        restored: list[TrashItem] = []
        refused: list[tuple[str, str]] = []
        for item_id in dict.fromkeys(item_ids):
            if item_id not in found:
                refused.append((item_id, f"No trash item {item_id!r}."))
                continue
            try:
                restored.append(self._restore(*found[item_id]))
            except (Conflict, NotFound, ServiceUnavailable) as exc:
                refused.append((item_id, exc.message))
        return restored, refused

    def _restore(self, item_dir: Path, item: TrashItem) -> TrashItem:
        target = self.library.resolve(item.original)  # re-checked: meta.json is data, not trust
        if item.kind == "file" and media_kind(target.name) is None:
            raise Conflict("The trash item's original name is not a media file.")
        if os.path.lexists(target):
            raise Conflict(f"{item.original!r} exists again; move it away first.", code="restore_conflict")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(item_dir / "data", target)
        except OSError as exc:
            raise ServiceUnavailable(f"Could not restore {item.original!r} ({exc.strerror}).") from None
        shutil.rmtree(item_dir, ignore_errors=True)
        return item

    def delete_many(self, item_ids: list[str]) -> tuple[list[TrashItem], list[tuple[str, str]], int]:
        """Delete the items for good; answers those deleted, `(id, why not)` for the others, the bytes freed."""
        found = self._locate(item_ids)
        deleted: list[TrashItem] = []
        unknown: list[tuple[str, str]] = []
        freed = 0
        for item_id in dict.fromkeys(item_ids):
            if item_id not in found:
                unknown.append((item_id, f"No trash item {item_id!r}."))
                continue
            item_dir, item = found[item_id]
            if self._destroy(item_dir):
                deleted.append(item)
                freed += item.size
            else:
                unknown.append((item_id, f"Could not delete trash item {item_id!r}."))
        return deleted, unknown, freed

    def empty(self) -> int:
        """Delete every item for good; returns the bytes freed."""
        freed = 0
        for item_dir in self._item_dirs():
            item = self._read(item_dir)
            if self._destroy(item_dir) and item is not None:
                freed += item.size
        return freed

    @staticmethod
    def _destroy(item_dir: Path) -> bool:
        """Remove an item folder; `data` is renamed away first, so a crash midway leaves no half item."""
        try:
            os.rename(item_dir / "data", item_dir / _DOOMED)
        except FileNotFoundError:
            pass  # an interrupted move: nothing to hide
        except OSError:
            return False
        shutil.rmtree(item_dir, ignore_errors=True)
        return not os.path.lexists(item_dir)

    def recover(self) -> int:
        """Remove item folders left by an interrupted move or restore; returns how many.

        Nothing to do while the library folder is missing: the app still starts, and answers 503.
        """
        removed = 0
        try:
            item_dirs = self._item_dirs()
        except ServiceUnavailable:
            return 0
        for item_dir in item_dirs:
            if not os.path.lexists(item_dir / "data"):
                shutil.rmtree(item_dir, ignore_errors=True)
                removed += 1
        return removed
