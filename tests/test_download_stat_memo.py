"""Repeat downloads without a `stat` per file: inotify stamps (`server.infra.folder_events`),
the download selection's memo (`StatMemo`, and the whole selections it remembers while no
watched folder changes) and the library watcher's sweep. Every change a fresh `stat` would see
must still count: files rewritten in place, touched, added, removed, changed through a
symbolic link or a second hard link."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from server import keys
from server.cache import freshness
from server.cache.freshness import FolderWatcher
from server.downloads import selection as selection_module
from server.infra.folder_events import FolderEvents, is_local_file_system
from server.library import FolderListing

from .conftest import Client, ClientFactory
from .helpers import jpeg_bytes, write
from .http_support import check_zip, get, settle

pytestmark = pytest.mark.skipif(not is_local_file_system("/tmp"), reason="inotify stamps need a local /tmp")


# -- the stamps ------------------------------------------------------------------------


def _changed_after(folder: Path, change: Callable[[], object]) -> bool:
    with contextlib.closing(FolderEvents()) as events:
        stamp = events.stamp(str(folder))
        assert stamp is not None
        events.refresh()
        assert events.still(str(folder), stamp)
        change()
        events.refresh()
        return not events.still(str(folder), stamp)


@pytest.mark.parametrize(
    "change",
    ["rewrite", "truncate", "touch", "chmod", "create", "delete", "rename in", "rename folder", "remove folder"],
)
def test_every_change_in_a_folder_moves_its_stamp(tmp_path: Path, change: str) -> None:
    folder = tmp_path / "model"
    target = write(folder / "a.jpg", b"one")
    outside = write(tmp_path / "elsewhere.jpg", b"two")

    def rmtree() -> None:
        target.unlink()
        folder.rmdir()

    changes: dict[str, Callable[[], object]] = {
        "rewrite": lambda: target.write_bytes(b"uno"),  # same size
        "truncate": lambda: os.truncate(target, 1),
        "touch": lambda: os.utime(target, (1_700_000_000, 1_700_000_000)),
        "chmod": lambda: target.chmod(0o600),
        "create": lambda: write(folder / "b.jpg", b"new"),
        "delete": target.unlink,
        "rename in": lambda: outside.rename(folder / "c.jpg"),
        "rename folder": lambda: folder.rename(tmp_path / "moved"),
        "remove folder": rmtree,
    }
    assert _changed_after(folder, changes[change])


@pytest.mark.parametrize("how", ["linked here", "moved in"])
def test_a_file_given_a_second_name_in_a_watched_folder_moves_every_stamp(tmp_path: Path, how: str) -> None:
    """The link is told to the new name's folder only; a write through the new name too: so
    the folder of the file's first name cannot vouch for it any more, nor can any other."""
    first, second, third = tmp_path / "first", tmp_path / "second", tmp_path / "third"
    original = write(first / "a.jpg", b"a")
    write(third / "c.jpg", b"c")
    second.mkdir()
    with contextlib.closing(FolderEvents()) as events:
        stamps = {folder: events.stamp(str(folder)) for folder in (first, second, third)}
        if how == "linked here":
            os.link(original, second / "b.jpg")
        else:
            os.link(original, tmp_path / "b.jpg")  # made outside every watched folder: not seen...
            events.refresh()
            assert all(events.still(str(f), s) for f, s in stamps.items() if s is not None)
            (tmp_path / "b.jpg").rename(second / "b.jpg")  # ...until it is moved into one
        events.refresh()
        assert not any(events.still(str(f), s) for f, s in stamps.items() if s is not None)
        assert None not in stamps.values()


def test_many_links_made_at_once_move_every_stamp_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dedupe tool hard-linking thousands of copies: one pass over the watched folders per
    `refresh`, not one per link."""
    first, second = tmp_path / "first", tmp_path / "second"
    originals = [write(first / f"{index}.jpg", b"x") for index in range(50)]
    second.mkdir()
    passes: list[int] = []
    real = FolderEvents._move_every_stamp

    def counted(self: FolderEvents) -> None:
        passes.append(1)
        real(self)

    monkeypatch.setattr(FolderEvents, "_move_every_stamp", counted)
    with contextlib.closing(FolderEvents()) as events:
        stamp = events.stamp(str(first))
        assert stamp is not None and events.stamp(str(second)) is not None
        for index, original in enumerate(originals):
            os.link(original, second / f"{index}.jpg")
        events.refresh()
        assert passes == [1]
        assert not events.still(str(first), stamp)


def test_new_files_and_folders_with_one_name_move_only_their_folder_s_stamp(tmp_path: Path) -> None:
    busy, quiet = tmp_path / "busy", tmp_path / "quiet"
    write(quiet / "q.jpg", b"q")
    busy.mkdir()
    with contextlib.closing(FolderEvents()) as events:
        quiet_stamp = events.stamp(str(quiet))
        busy_stamp = events.stamp(str(busy))
        assert quiet_stamp is not None and busy_stamp is not None
        write(busy / "new.jpg", b"n")
        (busy / "sub").mkdir()  # a folder has two names ("sub" and "sub/."): not a hard link
        write(tmp_path / "part.jpg", b"p").rename(busy / "moved.jpg")
        events.refresh()
        assert events.still(str(quiet), quiet_stamp)
        assert not events.still(str(busy), busy_stamp)


def test_a_quiet_folder_keeps_its_stamp_and_others_do_not_disturb_it(tmp_path: Path) -> None:
    quiet, busy = tmp_path / "quiet", tmp_path / "busy"
    write(quiet / "a.jpg", b"a")
    write(busy / "b.jpg", b"b")
    with contextlib.closing(FolderEvents()) as events:
        stamp = events.stamp(str(quiet))
        busy_stamp = events.stamp(str(busy))
        assert stamp is not None and busy_stamp is not None
        (quiet / "a.jpg").read_bytes()  # reading changes nothing
        write(busy / "b.jpg", b"bb")
        events.refresh()
        assert events.still(str(quiet), stamp)
        assert not events.still(str(busy), busy_stamp)
        assert events.stamp(str(quiet)) == stamp


def test_past_the_bound_the_oldest_folder_is_no_longer_trusted(tmp_path: Path) -> None:
    folders = [tmp_path / name for name in ("a", "b", "c")]
    for folder in folders:
        folder.mkdir()
    with contextlib.closing(FolderEvents(max_folders=2)) as events:
        stamps = [events.stamp(str(folder)) for folder in folders]
        assert None not in stamps
        assert [events.still(str(f), s) for f, s in zip(folders, stamps, strict=True) if s is not None] == [
            False,
            True,
            True,
        ]


def test_no_stamp_where_inotify_cannot_see_every_change(tmp_path: Path) -> None:
    assert not is_local_file_system("/proc")  # like a NAS share or FUSE: not a local file system
    with contextlib.closing(FolderEvents()) as events:
        assert events.stamp("/proc") is None
        assert events.stamp(str(tmp_path / "missing")) is None


# -- the download selection ------------------------------------------------------------


class StatCount:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folders: list[str] = []
        real = selection_module._stat_folder

        def counting(listing: FolderListing, model: str) -> selection_module.Stated:
            self.folders.append(model)
            return real(listing, model)

        monkeypatch.setattr(selection_module, "_stat_folder", counting)


def _settled_listings(library_root: Path) -> None:
    """Folder mtimes in the past: the catalog keeps their listings (a folder changed "just now"
    is read again on every request), so only the memo can notice a change in a file."""
    for folder in library_root.glob("*/*"):
        os.utime(folder, (1_700_000_000, 1_700_000_000))


def _rewrite_in_place(path: Path, data: bytes, mtime: int | None = 1_800_000_000) -> None:
    """`data` written through the file's existing inode (every name of it sees them), mtime set."""
    with open(path, "r+b") as handle:
        handle.write(data)
        handle.truncate()
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def _linked_model(library_root: Path, target: Path) -> Path:
    """alpha/linked: a file of its own and `shared.jpg`, a symbolic link to `target` (made)."""
    write(target, jpeg_bytes(5), mtime=1_700_000_000)
    linked = library_root / "alpha" / "linked"
    write(linked / "own.jpg", jpeg_bytes(6))
    (linked / "shared.jpg").symlink_to(os.path.relpath(target, linked))
    return target


async def _download(client: Client, url: str, tmp_path: Path) -> tuple[str, dict[str, bytes]]:
    status, headers, body = await get(client, url)
    assert status == 200
    await settle(client)
    archive = check_zip(body, tmp_path)
    return headers["X-Cache"], {name: archive.read(name) for name in archive.namelist()}


async def test_a_repeat_download_of_an_unchanged_model_stats_no_file(
    make_client: ClientFactory, library_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settled_listings(library_root)
    client = await make_client(watch_interval_s=3600)  # no sweep re-reads a listing meanwhile
    count = StatCount(monkeypatch)
    url = "/api/download?site=alpha&model=ana"
    assert (await _download(client, url, tmp_path))[0] == "MISS"
    assert count.folders == ["ana"]
    cache, _ = await _download(client, url, tmp_path)
    assert (cache, count.folders) == ("HIT", ["ana"])  # the second stat'ed nothing
    # a change in place (same name, same size): stat'ed again, a new archive with the new bytes
    target = library_root / "alpha" / "ana" / "img1.jpg"
    new_bytes = jpeg_bytes(91, (32, 24))
    with open(target, "r+b") as handle:
        handle.write(new_bytes[: target.stat().st_size].ljust(target.stat().st_size, b"\0"))
    cache, files = await _download(client, url, tmp_path)
    assert (cache, count.folders) == ("MISS", ["ana", "ana"])
    assert files["ana/img1.jpg"] == target.read_bytes()


async def test_a_whole_site_is_stat_ed_only_where_something_changed(
    make_client: ClientFactory, library_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settled_listings(library_root)
    client = await make_client(watch_interval_s=3600)
    url = "/api/download?site=alpha"
    await _download(client, url, tmp_path)
    count = StatCount(monkeypatch)
    assert (await _download(client, url, tmp_path))[0] == "HIT"
    assert count.folders == []
    os.utime(library_root / "alpha" / "bruno" / "a.jpg", (1_750_000_000, 1_750_000_000))  # touched only
    assert (await _download(client, url, tmp_path))[0] == "MISS"  # its mtime is part of the key
    assert count.folders == ["bruno"]


@pytest.mark.parametrize("link", ["symbolic", "hard"])
async def test_a_file_changed_through_another_folder_gives_a_new_archive(
    make_client: ClientFactory, library_root: Path, tmp_path: Path, link: str
) -> None:
    """inotify reports a change to the folder it was made through: a model folder holding a
    link to a file kept elsewhere in the library is stat'ed on every request."""
    original = write(library_root / "alpha" / "bruno" / "shared.jpg", jpeg_bytes(5), mtime=1_700_000_000)
    linked = library_root / "alpha" / "linked" / "shared.jpg"
    linked.parent.mkdir()
    write(linked.parent / "own.jpg", jpeg_bytes(6))
    if link == "symbolic":
        linked.symlink_to(Path("..") / "bruno" / "shared.jpg")
    else:
        os.link(original, linked)
    _settled_listings(library_root)
    client = await make_client(watch_interval_s=3600)
    url = "/api/download?site=alpha&model=linked"
    assert (await _download(client, url, tmp_path))[0] == "MISS"
    assert (await _download(client, url, tmp_path))[0] == "HIT"
    new_bytes = jpeg_bytes(7, (40, 30))
    _rewrite_in_place(original, new_bytes)  # through bruno/: the same inode keeps both names
    cache, files = await _download(client, url, tmp_path)
    assert cache == "MISS"
    assert files["linked/shared.jpg"] == new_bytes


async def test_a_file_given_a_second_name_later_and_written_through_it_gives_a_new_archive(
    make_client: ClientFactory, library_root: Path, tmp_path: Path
) -> None:
    """bruno's folder holds a plain file when its stats are kept; a name for it made later in
    another watched folder, and a write through that name, are told to that folder only."""
    original = write(library_root / "alpha" / "bruno" / "shared.jpg", jpeg_bytes(5), mtime=1_700_000_000)
    _settled_listings(library_root)
    client = await make_client(watch_interval_s=3600)
    url = "/api/download?site=alpha&model=bruno"
    await _download(client, "/api/download?site=alpha&model=ana", tmp_path)  # ana's folder watched
    assert (await _download(client, url, tmp_path))[0] == "MISS"
    assert (await _download(client, url, tmp_path))[0] == "HIT"
    second_name = library_root / "alpha" / "ana" / "shared.jpg"
    os.link(original, second_name)
    new_bytes = jpeg_bytes(7, (40, 30))
    _rewrite_in_place(second_name, new_bytes)
    cache, files = await _download(client, url, tmp_path)
    assert cache == "MISS"
    assert files["bruno/shared.jpg"] == new_bytes


class FolderLookups:
    """The model folders a selection asks the catalog for."""

    def __init__(self, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
        self.models: list[str] = []
        catalog = client.app[keys.CATALOG]
        real = catalog.folder

        async def counting(site: str, model: str) -> FolderListing:
            self.models.append(model)
            return await real(site, model)

        monkeypatch.setattr(catalog, "folder", counting)


async def test_a_repeat_site_download_looks_up_no_folder_until_a_watched_one_changes(
    make_client: ClientFactory, library_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settled_listings(library_root)
    client = await make_client(watch_interval_s=3600)
    url = "/api/download?site=alpha"
    for _ in range(2):  # stat'ed, then vouched for by stamps older than the request
        await _download(client, url, tmp_path)
    lookups, stats = FolderLookups(client, monkeypatch), StatCount(monkeypatch)
    assert (await _download(client, url, tmp_path))[0] == "HIT"
    assert (lookups.models, stats.folders) == ([], [])

    added = write(library_root / "alpha" / "bruno" / "new.jpg", jpeg_bytes(42))
    cache, files = await _download(client, url, tmp_path)
    assert (cache, files["bruno/new.jpg"]) == ("MISS", added.read_bytes())
    assert (sorted(lookups.models), stats.folders) == (["Carla", "ana", "bruno"], ["bruno"])

    for _ in range(2):
        assert (await _download(client, url, tmp_path))[0] == "HIT"
    lookups.models.clear()
    assert (await _download(client, url, tmp_path))[0] == "HIT"
    assert lookups.models == []
    (library_root / "alpha" / "ana" / "img2.jpg").unlink()
    cache, files = await _download(client, url, tmp_path)
    assert cache == "MISS"
    assert "ana/img2.jpg" not in files and "ana/img1.jpg" in files


async def test_a_folder_holding_a_link_is_read_on_every_repeat_of_a_remembered_site(
    make_client: ClientFactory, library_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No stamp vouches for a file reached by a symbolic link: the rest of the site is
    remembered, that folder is looked up and stat'ed each time, and a change through the
    link's target is in the next archive."""
    original = _linked_model(library_root, library_root / "alpha" / "bruno" / "shared.jpg")
    _settled_listings(library_root)
    client = await make_client(watch_interval_s=3600)
    url = "/api/download?site=alpha"
    for _ in range(2):
        await _download(client, url, tmp_path)
    lookups, stats = FolderLookups(client, monkeypatch), StatCount(monkeypatch)
    assert (await _download(client, url, tmp_path))[0] == "HIT"
    assert (lookups.models, stats.folders) == (["linked"], ["linked"])
    new_bytes = jpeg_bytes(7, (40, 30))
    _rewrite_in_place(original, new_bytes)
    cache, files = await _download(client, url, tmp_path)
    assert cache == "MISS"
    assert files["linked/shared.jpg"] == files["bruno/shared.jpg"] == new_bytes


async def test_a_change_no_stamp_sees_in_a_folder_read_again_gives_a_new_archive(
    make_client: ClientFactory, library_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link to a file in a folder nothing watches: no event tells of its change, but the
    folder holding the link is stat'ed on every repeat, and what it finds is in the archive."""
    target = _linked_model(library_root, library_root / "gamma" / "store" / "shared.jpg")
    _settled_listings(library_root)
    client = await make_client(watch_interval_s=3600)
    url = "/api/download?site=alpha"
    for _ in range(3):
        await _download(client, url, tmp_path)
    lookups = FolderLookups(client, monkeypatch)
    new_bytes = jpeg_bytes(8, (44, 33))
    _rewrite_in_place(target, new_bytes, mtime=None)
    cache, files = await _download(client, url, tmp_path)
    assert lookups.models == ["linked"]  # the rest remembered: no event came
    assert (cache, files["linked/shared.jpg"]) == ("MISS", new_bytes)


@pytest.mark.parametrize("change", ["site renamed", "site replaced by a copy", "parent model deleted"])
async def test_a_remembered_selection_is_not_given_once_a_folder_above_it_changed(
    make_client: ClientFactory, library_root: Path, tmp_path: Path, change: str
) -> None:
    """A change to a parent folder (renamed, replaced, moved to the trash) is told to the
    parent's watch, not to the model folder's: the remembered selection must not outlive it."""
    _settled_listings(library_root)
    client = await make_client(watch_interval_s=3600)  # no sweep notices the site changed
    nested = change == "parent model deleted"
    url = "/api/download?site=beta&model=patreon/joão" if nested else "/api/download?site=alpha&model=ana"
    for _ in range(3):  # stat'ed, vouched for, then remembered
        await _download(client, url, tmp_path)
    if change == "site renamed":
        (library_root / "alpha").rename(tmp_path / "alpha-elsewhere")
        assert (await get(client, url))[0] == 404
    elif change == "site replaced by a copy":
        site = library_root / "alpha"
        site.rename(tmp_path / "alpha-old")
        shutil.copytree(tmp_path / "alpha-old", site, symlinks=True)
        rewritten = site / "ana" / "img1.jpg"
        rewritten.write_bytes(jpeg_bytes(61, (50, 40)))
        os.utime(rewritten, (1_800_000_000, 1_800_000_000))
        cache, files = await _download(client, url, tmp_path)
        assert (cache, files["ana/img1.jpg"]) == ("MISS", rewritten.read_bytes())
    else:  # the trash moves beta/patreon; its child folder's watch hears nothing
        response = await client.delete("/api/model?site=beta&model=patreon")
        assert response.status == 200, await response.text()
        assert (await get(client, url))[0] == 404


async def test_a_folder_copied_into_the_place_of_another_is_watched_as_itself(
    make_client: ClientFactory, library_root: Path, tmp_path: Path
) -> None:
    """A copy with the same names, sizes and mtimes (`cp -a`) of the site put where it was: the
    model folder's old watch is on the old directory and hears nothing of the copy (nor of the
    move, made to its parent), so the copy gets its own, and a file rewritten in it later is in
    the next archive."""
    _settled_listings(library_root)
    client = await make_client(watch_interval_s=3600)
    url = "/api/download?site=alpha&model=ana"
    for _ in range(3):
        await _download(client, url, tmp_path)
    site = library_root / "alpha"
    site.rename(tmp_path / "alpha-old")
    shutil.copytree(tmp_path / "alpha-old", site, symlinks=True)  # copy2: mtimes kept, the folders' too
    assert (await _download(client, url, tmp_path))[0] in ("HIT", "MISS")  # the same bytes either way
    rewritten = site / "ana" / "img1.jpg"
    rewritten.write_bytes(jpeg_bytes(62, (52, 39)))
    os.utime(rewritten, (1_800_000_000, 1_800_000_000))
    cache, files = await _download(client, url, tmp_path)
    assert (cache, files["ana/img1.jpg"]) == ("MISS", rewritten.read_bytes())


async def test_a_folder_kept_after_a_selection_began_is_not_vouched_for_by_it(
    make_client: ClientFactory, library_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stamp taken while a selection reads the catalog may postdate a change the listing it
    read missed: that selection must not remember the folder as vouched for."""
    _settled_listings(library_root)
    client = await make_client(watch_interval_s=3600)
    await _download(client, "/api/download?site=alpha&model=bruno&model=Carla", tmp_path)  # kept
    service = client.app[keys.DOWNLOADS]
    catalog = client.app[keys.CATALOG]
    real = catalog.folder
    meanwhile: list[str] = []

    async def another_request_first(site: str, model: str) -> FolderListing:
        if model == "ana" and not meanwhile:  # another download keeps ana's folder now
            meanwhile.append(model)
            await selection_module.select(catalog, "alpha", ["ana"], service.stat_memo)
        return await real(site, model)

    monkeypatch.setattr(catalog, "folder", another_request_first)
    await selection_module.select(catalog, "alpha", [], service.stat_memo)
    assert meanwhile == ["ana"]
    lookups = FolderLookups(client, monkeypatch)
    await selection_module.select(catalog, "alpha", [], service.stat_memo)
    assert lookups.models == ["ana"]  # bruno and Carla remembered; ana's folder read again


async def test_a_change_while_a_remembered_selection_reads_its_other_folders_is_in_it(
    make_client: ClientFactory, library_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The remembered folders hold as of the check before the catalog is read; a folder that
    changes while the folders no stamp vouches for are read is not taken from memory."""
    _linked_model(library_root, library_root / "alpha" / "bruno" / "shared.jpg")
    _settled_listings(library_root)
    client = await make_client(watch_interval_s=3600)
    for _ in range(2):
        await _download(client, "/api/download?site=alpha", tmp_path)
    catalog, service = client.app[keys.CATALOG], client.app[keys.DOWNLOADS]
    real = catalog.folder
    rewritten = library_root / "alpha" / "ana" / "img1.jpg"

    async def rewrite_meanwhile(site: str, model: str) -> FolderListing:
        if model == "linked":
            rewritten.write_bytes(jpeg_bytes(77, (48, 36)))
        return await real(site, model)

    monkeypatch.setattr(catalog, "folder", rewrite_meanwhile)
    chosen = await selection_module.select(catalog, "alpha", [], service.stat_memo)
    sizes = {file.archive_name: file.size for file in chosen.files}
    assert sizes["ana/img1.jpg"] == rewritten.stat().st_size


# -- the library watcher ---------------------------------------------------------------


async def test_the_watcher_re_stats_only_the_folders_inotify_saw_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog's sweep re-stats a tracked folder's files (for rewrites in place) only until
    they are found unchanged once; after that, only when an event arrives for the folder."""
    root = tmp_path / "library"
    files = [write(root / "site" / model / "a.jpg", model.encode()) for model in ("m1", "m2")]
    with contextlib.closing(FolderEvents()) as events:
        watcher = FolderWatcher(root, 0.5, events)
        for path in files:
            info = path.stat()
            watcher.track_files("site", str(path.parent), {str(path): (info.st_size, info.st_mtime)})
        checked: list[str] = []
        real = freshness._files_changed

        def counting(tracked: dict[str, tuple[int, float]]) -> bool:
            checked.extend(Path(path).parent.name for path in tracked)
            return real(tracked)

        monkeypatch.setattr(freshness, "_files_changed", counting)
        await watcher.sweep()
        assert sorted(checked) == ["m1", "m2"]  # once after tracking: what the listing saw vs the disk
        checked.clear()
        await watcher.sweep()
        assert checked == []
        files[0].write_bytes(b"m1, rewritten in place")
        generation = watcher.generation("site")
        await watcher.sweep()
        assert checked == ["m1"]
        assert watcher.folder_generation(str(files[0].parent)) == 1
        assert watcher.generation("site") == generation + 1
