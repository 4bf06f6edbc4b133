"""The similar-hash index: exactly the all-pairs answer, for every plan and edge case, in bounded memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from server.similar import index
from server.similar.index import MAX_THRESHOLD, brute_force_pairs, group_similar, multi_index_plan, similar_pairs

TOP_BIT = 1 << 63


def clustered_hashes(count: int, spread: int, seed: int, clustered_share: float = 0.1) -> NDArray[np.uint64]:
    """Uniform random 64-bit hashes, with `clustered_share` of them replaced by near copies of
    a few seeds (0..spread random bits flipped), so pairs exist at every distance up to 2*spread."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=count, dtype=np.uint64)
    copies = int(count * clustered_share)
    seeds = hashes[rng.integers(0, count, size=max(1, copies // 6))]
    for position in rng.choice(count, size=copies, replace=False):
        value = int(seeds[rng.integers(0, len(seeds))])
        for bit in rng.choice(64, size=int(rng.integers(0, spread + 1)), replace=False):
            value ^= 1 << int(bit)
        hashes[position] = value
    return hashes


def python_pairs(hashes: Sequence[int], threshold: int) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i in range(len(hashes))
        for j in range(i + 1, len(hashes))
        if (hashes[i] ^ hashes[j]).bit_count() <= threshold
    ]


def python_groups(count: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    neighbours: dict[int, set[int]] = {}
    for i, j in pairs:
        neighbours.setdefault(i, set()).add(j)
        neighbours.setdefault(j, set()).add(i)
    seen: set[int] = set()
    groups = []
    for start in range(count):
        if start in seen or start not in neighbours:
            continue
        group, todo = {start}, [start]
        while todo:
            for other in neighbours[todo.pop()] - group:
                group.add(other)
                todo.append(other)
        seen |= group
        groups.append(sorted(group))
    return groups


def as_tuples(pairs: NDArray[np.int64]) -> list[tuple[int, int]]:
    return [(int(i), int(j)) for i, j in pairs]


def even_radii(threshold: int, blocks: int) -> tuple[int, ...]:
    """Radii for `blocks` blocks whose radius + 1 add up to threshold + 1, as even as can be."""
    base, extra = divmod(threshold + 1, blocks)
    return tuple(base + (1 if position < extra else 0) - 1 for position in range(blocks))


@pytest.mark.parametrize("threshold", [0, 1, 5, 12, 20])
def test_brute_force_matches_a_python_double_loop(threshold: int) -> None:
    hashes = clustered_hashes(300, spread=10, seed=threshold, clustered_share=0.3)
    expected = python_pairs([int(value) for value in hashes], threshold)
    assert as_tuples(brute_force_pairs(hashes, threshold)) == expected
    assert expected or threshold == 0  # the data has pairs to find


@pytest.mark.parametrize("threshold", [1, 3, 6, 8, 10, 12])
def test_default_plan_equals_brute_force(threshold: int) -> None:
    hashes = clustered_hashes(20_000, spread=threshold, seed=threshold)
    assert not index.plan_index(20_000, threshold).brute_force  # the index itself is exercised
    expected = brute_force_pairs(hashes, threshold)
    assert len(expected) > 100
    assert np.array_equal(similar_pairs(hashes, threshold), expected)


PLANS = [
    ((22, 21, 21), (1, 1, 1)),
    ((22, 21, 21), (3, -1, 2)),  # one block not probed: the others carry the threshold
    ((16, 16, 16, 16), (0, 1, 2, 1)),
    ((13, 13, 13, 13, 12), (0, 0, 1, 1, 2)),
    ((8, 8, 8, 8, 8, 8, 8, 8), (0, 0, 0, 0, 1, 0, 0, 1)),
    ((20, 20, 2, 22), (2, 1, 1, 1)),
]


@pytest.mark.parametrize(("bit_counts", "radii"), PLANS)
def test_every_block_layout_finds_exactly_the_brute_force_pairs(
    bit_counts: tuple[int, ...], radii: tuple[int, ...]
) -> None:
    threshold = sum(radius + 1 for radius in radii) - 1
    plan = multi_index_plan(bit_counts, radii, threshold)
    for seed in range(3):
        hashes = clustered_hashes(4000, spread=threshold, seed=seed, clustered_share=0.25)
        expected = brute_force_pairs(hashes, threshold)
        found = similar_pairs(hashes, threshold, plan=plan)
        assert np.array_equal(found, expected), plan.describe()


@pytest.mark.parametrize("workers", [2, 3])
def test_threads_share_the_work_and_find_the_same_pairs(workers: int) -> None:
    hashes = clustered_hashes(20_000, spread=9, seed=workers)
    expected = brute_force_pairs(hashes, 9)
    for plan in (index.plan_index(20_000, 9), multi_index_plan((22, 22, 20), (3, 3, 2), 9)):
        assert np.array_equal(similar_pairs(hashes, 9, plan=plan, workers=workers), expected), plan.describe()
    assert group_similar(hashes, 9, workers=workers) == group_similar(hashes, 9)


def test_full_buckets_and_repeated_hashes() -> None:
    """Few distinct block keys (many hashes per bucket) and repeated hashes, in every plan."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 2**64, size=40, dtype=np.uint64)
    low_bits_only = base[rng.integers(0, 40, size=3000)] ^ rng.integers(0, 256, size=3000, dtype=np.uint64)
    for threshold in (0, 2, 4, 7):
        expected = brute_force_pairs(low_bits_only, threshold)
        assert len(expected) > 300
        for bit_counts in ((22, 21, 21), (16, 16, 16, 16)):
            plan = multi_index_plan(bit_counts, even_radii(threshold, len(bit_counts)), threshold)
            assert np.array_equal(similar_pairs(low_bits_only, threshold, plan=plan), expected), plan.describe()
        assert np.array_equal(similar_pairs(low_bits_only, threshold), expected)


def test_no_hash_or_one_hash() -> None:
    empty: list[int] = []
    for hashes in (np.zeros(0, dtype=np.uint64), np.array([TOP_BIT | 5], dtype=np.uint64), empty):
        for threshold in (0, MAX_THRESHOLD):
            assert similar_pairs(hashes, threshold).shape == (0, 2)
            assert brute_force_pairs(hashes, threshold).shape == (0, 2)
            assert group_similar(hashes, threshold) == []


def test_all_identical_hashes_form_one_group_of_all_pairs() -> None:
    hashes = np.full(60, TOP_BIT | 0x1234, dtype=np.uint64)
    for threshold in (0, 3, MAX_THRESHOLD):
        pairs = similar_pairs(hashes, threshold)
        assert as_tuples(pairs) == [(i, j) for i in range(60) for j in range(i + 1, 60)]
        assert group_similar(hashes, threshold) == [list(range(60))]


def test_threshold_zero_pairs_only_identical_hashes() -> None:
    hashes = np.array([5, 4, 5, 7, 4, 5, TOP_BIT | 5, TOP_BIT | 5], dtype=np.uint64)
    assert as_tuples(similar_pairs(hashes, 0)) == [(0, 2), (0, 5), (1, 4), (2, 5), (6, 7)]
    assert group_similar(hashes, 0) == [[0, 2, 5], [1, 4], [6, 7]]
    assert as_tuples(similar_pairs(hashes, 1)) == python_pairs([int(value) for value in hashes], 1)


def test_max_threshold_and_beyond() -> None:
    hashes = clustered_hashes(3000, spread=MAX_THRESHOLD, seed=3, clustered_share=0.3)
    expected = brute_force_pairs(hashes, MAX_THRESHOLD)
    assert np.array_equal(similar_pairs(hashes, MAX_THRESHOLD), expected)
    plan = index.plan_index(100_000, MAX_THRESHOLD)  # a large-input plan, on this input
    assert np.array_equal(similar_pairs(hashes, MAX_THRESHOLD, plan=plan), expected)
    with pytest.raises(ValueError, match="between 0 and"):
        similar_pairs(hashes, MAX_THRESHOLD + 1)
    with pytest.raises(ValueError, match="between 0 and"):
        group_similar(hashes, -1)


def test_top_bit_hashes_and_signed_or_python_int_input() -> None:
    """Hashes at and above 2**63 are distinct values, whether given as uint64, as the same 64
    bits in int64 (as SQLite stores them) or as Python ints."""
    rng = np.random.default_rng(11)
    hashes = clustered_hashes(2000, spread=6, seed=11, clustered_share=0.3) | np.uint64(TOP_BIT)
    hashes[rng.integers(0, 2000, size=500)] &= np.uint64(TOP_BIT - 1)  # some without it
    expected = python_pairs([int(value) for value in hashes[:400]], 6)
    assert as_tuples(similar_pairs(hashes[:400], 6)) == expected
    full = similar_pairs(hashes, 6)
    assert np.array_equal(full, brute_force_pairs(hashes, 6))
    assert np.array_equal(similar_pairs(hashes.view(np.int64), 6), full)
    assert np.array_equal(similar_pairs([int(value) for value in hashes], 6), full)
    flipped = np.array([TOP_BIT, 0, TOP_BIT | 1], dtype=np.uint64)  # distance 1, 1, 2
    assert as_tuples(similar_pairs(flipped, 1)) == [(0, 1), (0, 2)]


def test_rejects_bad_input() -> None:
    with pytest.raises(TypeError):
        similar_pairs(np.array([1.5, 2.5]), 3)
    with pytest.raises(ValueError, match="one-dimensional"):
        similar_pairs(np.zeros((2, 2), dtype=np.uint64), 3)
    with pytest.raises(TypeError):
        similar_pairs(np.zeros(3, dtype=np.uint64), 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not cover"):
        multi_index_plan((22, 21, 21), (1, 1, 0), 5)
    with pytest.raises(ValueError, match="workers"):
        similar_pairs(np.arange(10, dtype=np.uint64), 4, workers=0)
    plan = multi_index_plan((22, 21, 21), (1, 1, 1), 5)
    with pytest.raises(ValueError, match="plan is for threshold 5"):
        similar_pairs(np.arange(10, dtype=np.uint64), 4, plan=plan)


@pytest.mark.parametrize("threshold", [2, 6, 10])
def test_groups_are_the_connected_components(threshold: int) -> None:
    hashes = clustered_hashes(1500, spread=threshold, seed=20 + threshold, clustered_share=0.4)
    hashes[1400:] = hashes[:100]  # repeated hashes join their originals' groups
    pairs = python_pairs([int(value) for value in hashes], threshold)
    expected = python_groups(len(hashes), pairs)
    assert any(len(group) > 2 for group in expected)
    assert group_similar(hashes, threshold) == expected
    plan = multi_index_plan((16, 16, 16, 16), even_radii(threshold, 4), threshold)
    assert group_similar(hashes, threshold, plan=plan) == expected


def test_groups_follow_chains_and_are_ordered() -> None:
    """a~b and b~c put a, b, c in one group even though a and c are far apart."""
    a = 0
    b = 0b1111  # 4 from a
    c = 0b1111_1111  # 4 from b, 8 from a
    far = 0xFFFF_FFFF_0000_0000
    hashes = np.array([far, c, a, far ^ 1, b, TOP_BIT | 0xFF_FF00_0000], dtype=np.uint64)
    assert as_tuples(similar_pairs(hashes, 4)) == [(0, 3), (1, 4), (2, 4)]
    assert group_similar(hashes, 4) == [[0, 3], [1, 2, 4]]
    assert group_similar(hashes, 3) == [[0, 3]]


def test_pairs_are_unique_ordered_and_typed() -> None:
    hashes = clustered_hashes(30_000, spread=8, seed=5, clustered_share=0.2)
    pairs = similar_pairs(hashes, 8)
    assert pairs.dtype == np.int64 and pairs.ndim == 2 and pairs.shape[1] == 2
    assert np.all(pairs[:, 0] < pairs[:, 1])
    codes = pairs[:, 0] * len(hashes) + pairs[:, 1]
    assert np.all(np.diff(codes) > 0)  # strictly increasing: sorted, no pair twice


def test_plans_cover_the_threshold() -> None:
    for count in (10, 5000, 200_000, 5_000_000):
        for threshold in range(MAX_THRESHOLD + 1):
            plan = index.plan_index(count, threshold)
            if plan.brute_force:
                continue
            assert sum(block.bits for block in plan.blocks) == 64
            assert sum(block.radius + 1 for block in plan.blocks) == threshold + 1
            assert all(block.bits <= 22 for block in plan.blocks)
    assert index.plan_index(1_000_000, 8).describe().startswith("3 blocks")
    assert index.plan_index(200, 8).brute_force


def test_index_memory_stays_bounded() -> None:
    """200,000 hashes at threshold 8: peak traced allocations (numpy reports its buffers to
    tracemalloc) stay under 64 MiB (about 36 measured), while the all-pairs distance matrix
    alone would be 20 GB."""
    hashes = clustered_hashes(200_000, spread=8, seed=9, clustered_share=0.03)
    tracemalloc.start()
    try:
        groups = group_similar(hashes, 8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert groups
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_brute_force_memory_stays_bounded() -> None:
    """The reference compares in chunks: 20,000 hashes (200 million pairs) peak under 40 MiB."""
    hashes = clustered_hashes(20_000, spread=4, seed=10)
    tracemalloc.start()
    try:
        brute_force_pairs(hashes, 4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.0f} MiB"
