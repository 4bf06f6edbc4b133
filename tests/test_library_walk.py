"""The fast paths of the site walk give exactly the answers of the plain definitions."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from server.library import Library, media_kind, natural_key, natural_min, natural_order, sort_entries

from .helpers import write


@pytest.mark.parametrize(
    "names",
    [
        ["img10.jpg", "img9.jpg", "IMG1.jpg"],
        ["a1", "a!", "a-"],
        ["007.jpg", "7.jpg", "07.jpg"],
        ["b.jpg", "A.jpg", "a.jpg"],
        ["x_0002.png", "0001.jpg", "copy_0001.jpg", "0001.webp"],
        ["1234_p1.jpg", "1234_p0.jpg", "1234_p10.jpg"],
        ["émile2.jpg", "Emile10.jpg", "ßa.jpg", "ssa.jpg"],
        ["only.jpg"],
    ],
)
def test_natural_min_is_the_first_least_natural_key(names: list[str]) -> None:
    assert natural_min(names) == min(names, key=natural_key)


@pytest.mark.parametrize(
    "names",
    [
        ["img_0010.jpg", "IMG_0002.jpg", "img_0002.jpg", "img_0001.jpg"],  # one digit mask: one plain sort
        ["a_1.jpg", "ab1.jpg", "A_1.jpg"],
        ["img10.jpg", "img9.jpg", "IMG1.jpg"],
        ["émile2.jpg", "Emile10.jpg", "ßa.jpg", "ssa.jpg"],
        ["d07/s03/IMG_4730589.jpg", "d01/s00/IMG_4730589.jpg", "D01/s00/img_4730589.jpg"],  # paths
        ["a/b10.jpg", "a/b9.jpg", "ab/10.jpg"],
        [],
    ],
)
def test_natural_order_is_the_stable_sort_by_natural_key(names: list[str]) -> None:
    assert natural_order(names) == sorted(range(len(names)), key=lambda index: natural_key(names[index]))


def _random_names(rng: random.Random) -> list[str]:
    shapes = ("img", "IMG", "x_", "", "Ana ", "ß")
    count = rng.randint(1, 8)
    if rng.random() < 0.5:
        return ["".join(rng.choice("aAbB0123456789._- éZ") for _ in range(rng.randint(1, 8))) for _ in range(count)]
    return [
        rng.choice(shapes) + str(rng.randint(0, 120)).zfill(rng.choice((1, 3))) + rng.choice((".jpg", ".PNG"))
        for _ in range(count)
    ]


def test_natural_order_matches_the_definition_on_random_names() -> None:
    rng = random.Random(11)
    for _ in range(20_000):
        names = _random_names(rng)
        if rng.random() < 0.5:  # names or paths of one digit mask, the fast path
            names = [f"{rng.choice('aAbB_/')}{rng.randint(0, 99):02d}{rng.choice('./')}jpg" for _ in names]
        assert natural_order(names) == sorted(range(len(names)), key=lambda i: natural_key(names[i])), names


def test_natural_min_matches_the_definition_on_random_names() -> None:
    rng = random.Random(7)
    shapes = ("img", "IMG", "x_", "", "Ana ", "ß")
    for _ in range(20_000):
        count = rng.randint(1, 8)
        if rng.random() < 0.5:
            names = [
                "".join(rng.choice("aAbB0123456789._- éZ") for _ in range(rng.randint(1, 8))) for _ in range(count)
            ]
        else:
            names = [
                rng.choice(shapes) + str(rng.randint(0, 120)).zfill(rng.choice((1, 3))) + rng.choice((".jpg", ".PNG"))
                for _ in range(count)
            ]
        assert natural_min(names) == min(names, key=natural_key), names


def test_walk_classifies_like_media_kind(tmp_path: Path) -> None:
    names = ["a.JPG", "b.jpeg.txt", "c.tar.mp4", "d.Webm", "e", "f.", "g.jpg.part", "h.json", "i.MKV", "j.bmp"]
    for name in names:
        write(tmp_path / "site" / "model" / name, b"x")
    (tmp_path / "site" / "model" / "k.jpg").mkdir()  # a folder named like media is a folder, not media
    listing = Library(tmp_path).walk_site("site")
    [model] = listing.models
    assert model.images == sum(media_kind(n) == "image" for n in names)
    assert model.videos == sum(media_kind(n) == "video" for n in names)
    assert model.cover == "a.JPG"


def test_sort_entries_is_the_one_classification(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    folder = root / "site" / "model"
    for name in ("a.jpg", "b.MOV", "notes.txt", ".hidden.jpg", "c.jpg.part"):
        write(folder / name, b"x")
    for name in ("studio.mov", "final.gif", "plain"):
        (folder / name).mkdir()
    write(tmp_path / "outside.jpg", b"s")
    os.symlink(tmp_path / "outside.jpg", folder / "escape.jpg")
    os.symlink(tmp_path, folder / "escape_dir")
    os.symlink("a.jpg", folder / "inside.jpg")
    os.symlink("plain", folder / "linked.webm")
    with os.scandir(folder) as entries:
        media, folders = sort_entries(str(folder), entries, f"{root}/")
    assert sorted((entry.name, kind, is_link) for entry, kind, is_link in media) == [
        ("a.jpg", "image", False),
        ("b.MOV", "video", False),
        ("inside.jpg", "image", True),
    ]
    assert sorted((entry.name, is_link) for entry, is_link in folders) == [
        ("final.gif", False),
        ("linked.webm", True),
        ("plain", False),
        ("studio.mov", False),
    ]
