"""The library model and the one safe path resolver."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.errors import BadRequest, NotFound, ServiceUnavailable
from server.library import Library, media_kind, natural_key

from .helpers import jpeg_bytes, make_model, write


def test_natural_order_is_case_insensitive_and_numeric() -> None:
    names = ["img10.jpg", "Img2.jpg", "img1.jpg", "ana", "Bruno", "ANA2"]
    assert sorted(names, key=natural_key) == ["ana", "ANA2", "Bruno", "img1.jpg", "Img2.jpg", "img10.jpg"]


def test_digit_like_text_between_numbers_does_not_break_the_natural_order(library_root: Path) -> None:
    """ "²" and "½" are digits to `str.isdigit` but not decimals: a name holding one between two
    numbers was parsed as a number (ValueError, a 500 for its folder's listing)."""
    names = ["a1²2.jpg", "a1½3.jpg", "a1.jpg", "a10.jpg"]
    assert sorted(names, key=natural_key) == ["a1.jpg", "a1²2.jpg", "a1½3.jpg", "a10.jpg"]
    folder = library_root / "alpha" / "ana"
    write(folder / "a1²2.jpg", jpeg_bytes(3))
    listing = Library(library_root).read_model("alpha", "ana")
    assert "a1²2.jpg" in [file.name for file in listing.images]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.JPG", "image"),
        ("a.jpeg", "image"),
        ("a.webp", "image"),
        ("a.avif", "image"),
        ("a.MP4", "video"),
        ("a.mkv", "video"),
        ("a.json", None),
        ("a.txt", None),
        ("a.jpg.part", None),
        (".hidden.jpg", None),
        ("noext", None),
        ("f.", None),
        (".jpg", None),
        ("c.tar.mp4", "video"),
        ("site/model/a.Png", "image"),
        ("site/model/.hidden.jpg", None),
        ("site/x.jpg/notes", None),
    ],
)
def test_media_kind(name: str, kind: str | None) -> None:
    assert media_kind(name) == kind


def test_walk_finds_nested_models_in_natural_order(library_root: Path) -> None:
    library = Library(library_root)
    alpha = library.walk_site("alpha")
    assert [m.name for m in alpha.models] == ["ana", "bruno", "Carla"]
    ana = alpha.models[0]
    assert (ana.images, ana.videos) == (4, 1)  # sidecars, .part and hidden files ignored
    assert ana.cover == "img1.jpg"
    beta = library.walk_site("beta")
    assert [m.name for m in beta.models] == ["patreon/joão"]


def test_folder_listing_sorts_once_naturally(library_root: Path) -> None:
    library = Library(library_root)
    listing = library.list_folder(library.model_dir("alpha", "ana"))
    assert [f.name for f in listing.images] == ["img1.jpg", "img2.jpg", "IMG3.PNG", "img10.jpg"]
    assert [f.name for f in listing.videos] == ["clip.mp4"]


def test_model_with_media_and_sub_models(tmp_path: Path) -> None:
    make_model(tmp_path, "s", "kemono", ["top.jpg"])
    make_model(tmp_path, "s", "kemono/patreon/ana", ["deep.jpg"])
    (tmp_path / "s" / "empty" / "deeper").mkdir(parents=True)
    listing = Library(tmp_path).walk_site("s")
    assert [m.name for m in listing.models] == ["kemono", "kemono/patreon/ana"]


@pytest.mark.parametrize(
    "relative",
    ["alpha/../beta/patreon/joão/p1.jpg", "../etc/passwd", "alpha/./ana/img1.jpg", "alpha//ana/img1.jpg"],
)
def test_traversal_segments_are_refused(library_root: Path, relative: str) -> None:
    with pytest.raises(BadRequest):
        Library(library_root).media_path(relative)


@pytest.mark.parametrize(
    ("relative", "error"),
    [
        ("/etc/passwd", BadRequest),
        ("C:/Windows/win.ini", BadRequest),
        ("alpha\\..\\..\\etc\\passwd", BadRequest),
        ("alpha/ana/img1.jpg\x00.png", BadRequest),
        ("alpha/ana/.hidden.jpg", NotFound),
        ("alpha/.trash/x/data", NotFound),
        ("alpha/ana/info.json", NotFound),
        ("alpha/ana/missing.jpg", NotFound),
        ("alpha/ana", NotFound),
        ("alpha/ana/%2e%2e/%2e%2e/x.jpg", NotFound),  # already-decoded text: literal names
        ("alpha/ana/\uff0e\uff0e/x.jpg", NotFound),  # full-width dots are just a name
    ],
)
def test_resolver_vectors(library_root: Path, relative: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        Library(library_root).media_path(relative)


def test_symlinks_are_followed_only_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    make_model(root, "s", "m", ["a.jpg"])
    outside = write(tmp_path / "secret" / "s.jpg", jpeg_bytes(5))
    os.symlink(outside, root / "s" / "m" / "out.jpg")
    os.symlink(root / "s" / "m" / "a.jpg", root / "s" / "m" / "in.jpg")
    os.symlink(tmp_path / "secret", root / "s" / "escape")
    os.symlink(root / "s" / "m", root / "s" / "alias")
    library = Library(root)
    with pytest.raises(NotFound):
        library.media_path("s/m/out.jpg")
    with pytest.raises(NotFound):
        library.media_path("s/escape/s.jpg")
    assert library.media_path("s/m/in.jpg").name == "a.jpg"
    listing = library.walk_site("s")
    names = {m.name: m for m in listing.models}
    assert "escape" not in names
    assert set(names) in ({"m"}, {"alias"})  # one folder, reached once (no double counting)
    model = next(iter(names.values()))
    assert model.images == 2  # a.jpg and the inside symlink; never the outside one


def test_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    make_model(tmp_path, "s", "m", ["a.jpg"])
    os.symlink(tmp_path / "s", tmp_path / "s" / "m" / "loop")
    listing = Library(tmp_path).walk_site("s")
    assert [m.name for m in listing.models] == ["m"]


def test_missing_root_is_unavailable(tmp_path: Path) -> None:
    library = Library(tmp_path / "gone")
    with pytest.raises(ServiceUnavailable):
        library.check_available()
    with pytest.raises(ServiceUnavailable):
        library.site_names()


def test_unknown_site_and_model(library_root: Path) -> None:
    library = Library(library_root)
    with pytest.raises(NotFound):
        library.site_dir("nope")
    with pytest.raises(NotFound):
        library.model_dir("alpha", "nope")
    with pytest.raises(BadRequest):
        library.site_dir("alpha/ana")
