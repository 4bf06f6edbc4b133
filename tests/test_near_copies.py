"""The near-copy ground truth (benchmarks.near_copies) and the similar-image benchmark's scoring
(benchmarks.bench_similar's pure functions), on tiny generated sets and hand-made cases."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import near_copies
from benchmarks.bench_similar import (
    Score,
    SweepRow,
    components,
    distance_matrix,
    groups_at,
    recommend,
    reported_pairs,
    score,
    true_pairs,
)
from benchmarks.near_copies import EDIT_KINDS, NEGATIVE_KINDS, ORIGINAL, SITES, Options, Truth

TINY = Options(originals=3, min_mp=0.02, max_mp=0.05, max_copy_mp=0.15, seed=7)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    root = tmp_path_factory.mktemp("near") / "lib"
    return root, near_copies.generate(root, TINY)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def originals_by_id(root: Path, truth: Truth) -> dict[str, Path]:
    return {entry["original"]: root / path for path, entry in truth.items() if entry["kind"] == ORIGINAL}


def test_every_file_decodes_with_the_format_and_size_the_truth_states(tiny: tuple[Path, Truth]) -> None:
    root, truth = tiny
    for path, entry in truth.items():
        with Image.open(root / path) as image:
            assert image.format == entry["format"], path
            assert image.size == (entry["width"], entry["height"]), path
            image.load()
    kinds = [entry["kind"] for entry in truth.values()]
    assert {kind: kinds.count(kind) for kind in set(kinds)} == {
        kind: TINY.originals for kind in (ORIGINAL, *EDIT_KINDS, *NEGATIVE_KINDS)
    }


def test_originals_are_in_range_and_carry_exif_and_copies_live_in_other_sites(tiny: tuple[Path, Truth]) -> None:
    root, truth = tiny
    for path, entry in truth.items():
        site = path.split("/")[0]
        if entry["kind"] == ORIGINAL:
            assert site == SITES[0]
            assert TINY.min_mp * 1e6 * 0.98 <= entry["width"] * entry["height"] <= TINY.max_mp * 1e6 * 1.02
            with Image.open(root / path) as image:
                assert image.getexif().get(near_copies.EXIF_MAKE)
        elif entry["kind"] in EDIT_KINDS:
            assert site != SITES[0]
        assert len(path.split("/")) == 3  # site/model/file


def test_each_edit_is_the_edit_it_claims(tiny: tuple[Path, Truth]) -> None:
    root, truth = tiny
    originals = originals_by_id(root, truth)
    for path, entry in truth.items():
        kind, source = entry["kind"], originals[entry["original"]]
        with Image.open(source) as image:
            source_size = image.size
        if kind in ("jpeg", "webp", "png"):
            assert entry["format"] == kind.upper()
            assert (entry["width"], entry["height"]) == source_size
            assert np.abs(pixels(root / path) - pixels(source)).mean() < 6
        if kind in ("jpeg", "webp"):
            assert 60 <= entry["edit"]["quality"] <= 95
        if kind == "exif_stripped":
            with Image.open(root / path) as image:
                assert not image.getexif()
            assert np.array_equal(pixels(root / path), pixels(source))
        if kind == "resize":
            scale = entry["edit"]["scale"]
            assert 0.5 <= scale <= 2.0
            assert entry["width"] == pytest.approx(source_size[0] * scale, abs=1)
            assert entry["height"] == pytest.approx(source_size[1] * scale, abs=1)
        if kind == "crop":
            left, top, right, bottom = entry["edit"]["box"]
            assert (right - left, bottom - top) == (entry["width"], entry["height"])
            assert 0.95 * source_size[0] <= entry["width"] < source_size[0]
            assert 0.95 * source_size[1] <= entry["height"] < source_size[1]
            inside = pixels(source)[top:bottom, left:right]
            assert np.abs(pixels(root / path) - inside).mean() < 6
        if kind == "overlay":
            changed = np.abs(pixels(root / path) - pixels(source)).max(axis=2) > 40
            assert 0 < changed.mean() < 0.15
        if kind in NEGATIVE_KINDS:
            assert entry["negative_of"] == entry["original"]
            assert entry["group"] != entry["original"]
            assert (entry["width"], entry["height"]) == source_size
            assert np.abs(pixels(root / path) - pixels(source)).mean() > 8


def test_the_truth_file_matches_the_tree(tiny: tuple[Path, Truth], tmp_path: Path) -> None:
    root, truth = tiny
    on_disk = {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}
    assert on_disk == set(truth)
    groups: dict[str, list[str]] = {}
    for entry in truth.values():
        groups.setdefault(entry["group"], []).append(entry["kind"])
    for group, kinds in groups.items():
        if group in {entry["original"] for entry in truth.values()}:
            assert sorted(kinds) == sorted((ORIGINAL, *EDIT_KINDS))
        else:
            assert len(kinds) == 1 and kinds[0] in NEGATIVE_KINDS
    saved = tmp_path / "truth.json"
    near_copies.write_truth(saved, truth, TINY)
    assert near_copies.read_truth(saved) == truth


def test_a_seed_reproduces_the_same_bytes_and_another_seed_does_not(tiny: tuple[Path, Truth], tmp_path: Path) -> None:
    root, truth = tiny
    again = near_copies.generate(tmp_path / "again", TINY)
    assert again == truth
    for path in truth:
        assert (tmp_path / "again" / path).read_bytes() == (root / path).read_bytes(), path
    other = Options(originals=1, min_mp=TINY.min_mp, max_mp=TINY.max_mp, max_copy_mp=TINY.max_copy_mp, seed=8)
    other_truth = near_copies.generate(tmp_path / "other", other)
    first_original = next(path for path, entry in truth.items() if entry["kind"] == ORIGINAL)
    other_original = next(path for path, entry in other_truth.items() if entry["kind"] == ORIGINAL)
    assert (tmp_path / "other" / other_original).read_bytes() != (root / first_original).read_bytes()


def test_exif_strip_drops_only_the_exif_segment() -> None:
    image = Image.new("RGB", (24, 16), (200, 30, 90))
    with_exif = near_copies.encode(image, "JPEG", 90, near_copies.exif_bytes(random.Random(1)))
    stripped = near_copies.strip_jpeg_exif(with_exif)
    assert b"Exif\x00\x00" in with_exif and b"Exif\x00\x00" not in stripped
    assert len(stripped) < len(with_exif)
    assert with_exif.endswith(stripped[-100:])  # the scan data is untouched
    with pytest.raises(ValueError):
        near_copies.strip_jpeg_exif(b"not a jpeg")


# -- scoring on hand-made cases ---------------------------------------------------------------


def entry(group: str, kind: str, original: str) -> dict[str, object]:
    return {"group": group, "kind": kind, "original": original,
            "negative_of": original if kind in NEGATIVE_KINDS else None}  # fmt: skip


HAND_TRUTH: Truth = {
    "s/m/a1.jpg": entry("A", ORIGINAL, "A"),
    "s/m/a2.jpg": entry("A", "resize", "A"),
    "s/m/a3.jpg": entry("A", "crop", "A"),
    "s/m/b1.jpg": entry("B", ORIGINAL, "B"),
    "s/m/b2.jpg": entry("B", "jpeg", "B"),
    "s/m/n1.jpg": entry("A-other_view", "other_view", "A"),
}


def test_pairs_are_every_two_members_of_a_group() -> None:
    assert reported_pairs([["b", "a", "c"], ["d"]]) == {("a", "b"), ("a", "c"), ("b", "c")}
    assert true_pairs(HAND_TRUTH) == {
        ("s/m/a1.jpg", "s/m/a2.jpg"),
        ("s/m/a1.jpg", "s/m/a3.jpg"),
        ("s/m/a2.jpg", "s/m/a3.jpg"),
        ("s/m/b1.jpg", "s/m/b2.jpg"),
    }


def test_score_counts_negatives_as_false_pairs_overall_and_per_kind() -> None:
    reported = [["s/m/a1.jpg", "s/m/a2.jpg", "s/m/n1.jpg"], ["s/m/b1.jpg", "s/m/b2.jpg"]]
    overall, per_kind = score(HAND_TRUTH, reported)
    assert (overall.true_pairs, overall.reported, overall.true_positives) == (4, 4, 2)
    assert overall.precision == 0.5 and overall.recall == 0.5
    assert not overall.meets()
    resize = per_kind["resize"]
    assert (resize.true_pairs, resize.reported, resize.true_positives) == (2, 2, 1)
    crop = per_kind["crop"]
    assert (crop.true_pairs, crop.reported, crop.precision, crop.recall) == (2, 0, None, 0.0)
    negative = per_kind["other_view"]
    assert (negative.reported, negative.false_positives, negative.grouped_negatives, negative.recall) == (2, 2, 1, None)
    assert per_kind["jpeg"].meets()
    assert list(per_kind) == [ORIGINAL, "resize", "jpeg", "crop", "other_view"]


def test_a_perfect_grouping_scores_one() -> None:
    overall, per_kind = score(HAND_TRUTH, [["s/m/a1.jpg", "s/m/a2.jpg", "s/m/a3.jpg"], ["s/m/b1.jpg", "s/m/b2.jpg"]])
    assert overall.precision == 1.0 and overall.recall == 1.0
    assert per_kind["other_view"].precision is None and per_kind["other_view"].meets()


def test_components_join_chains_and_drop_singletons() -> None:
    assert sorted(components(6, [(0, 1), (2, 1), (4, 5)])) == [[0, 1, 2], [4, 5]]
    assert components(3, []) == []


def test_groups_at_a_threshold_follow_hamming_distances() -> None:
    hashes = np.array([0b0000, 0b0001, 0b0011, 0xFFFF_FFFF_FFFF_FFFF], dtype=np.uint64)
    distances = distance_matrix(hashes)
    assert distances[0, 3] == 64 and distances[0, 2] == 2
    assert groups_at(distances, 0) == []
    assert groups_at(distances, 1) == [[0, 1, 2]]  # 0-1 and 1-2 are 1 apart: one group
    assert groups_at(distances, 64) == [[0, 1, 2, 3]]


def sweep_row(threshold: int, precision: float, recall: float) -> SweepRow:
    # 1000 true pairs; `recall` of them found, plus false ones to make `precision`
    found = round(1000 * recall)
    reported = round(found / precision)
    overall = Score("overall", 100, 1000, reported, found)
    return SweepRow(threshold, overall, {"resize": Score("resize", 10, 1000, reported, found)})


def test_recommend_prefers_a_threshold_with_headroom_then_the_widest_margin() -> None:
    perfect = [sweep_row(t, 1.0, 1.0) for t in range(3, 10)]
    rows = [sweep_row(t, 1.0, 0.5) for t in range(3)] + perfect + [sweep_row(t, 0.9, 1.0) for t in range(10, 17)]
    assert recommend(rows) == 5  # 3..9 meet the goals; 5..7 keep two on each side; the smallest on a tie
    assert recommend(rows, headroom=0) == 3
    assert recommend(rows, limit=4) == 3  # none robust under the limit: the best allowed
    margins = [sweep_row(t, 1.0, 0.5) for t in range(3)] + [sweep_row(t, 0.99, 0.99) for t in range(3, 6)]
    margins += [sweep_row(6, 1.0, 1.0)] + [sweep_row(t, 0.99, 0.99) for t in range(7, 10)]
    assert recommend(margins) == 6
    assert recommend([sweep_row(t, 0.5, 0.5) for t in range(17)]) is None
