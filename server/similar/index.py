"""Which 64-bit perceptual hashes lie within a Hamming distance of each other, without comparing all pairs.

Owns `similar_pairs` (every index pair i < j within the threshold), `group_similar` (their
connected components) and `brute_force_pairs` (the all-pairs reference the tests and the
benchmark check the index against). Pure numpy, no I/O.

The index is multi-index hashing (Norouzi, Punjani, Fleet: "Fast search in Hamming space with
multi-index hashing"): the 64 bits are cut into m contiguous blocks and block i gets a radius
r_i with sum(r_i + 1) > threshold. Two hashes within the threshold then differ in at most r_i
bits of some block i (if every block differed in r_i + 1 or more, the distance would exceed
the threshold), so every such pair is found by probing, in some block, the buckets whose key is
the block key with at most r_i bits flipped. Per block the hashes are sorted by block key once,
with a direct-address table of bucket starts (blocks are at most 22 bits); each flip mask is
then one vectorised pass: xor, a gather in the table, and a full 64-bit distance check of the
few hits with `np.bitwise_count`. A pair whose block keys differ by the mask e is probed only
from the end whose key has e's highest bit clear, and a pair found in block i is kept only if
no earlier block found it, so no pair is ever reported twice and nothing needs deduplicating.

`plan_index` picks the number of blocks and the radii from a cost model (calibrated on one core
of the development machine, see `_COST`): more blocks mean fewer flip masks but fuller buckets,
so the best plan depends on the number of hashes as well as on the threshold, and for a few
thousand hashes the chunked all-pairs compare is cheaper and is used instead. Identical hashes
are collapsed first, so a library full of byte-identical copies does not blow up the buckets.
Memory: one block's tables at a time (2**22 slots at most, about 100 MiB in all for a million
hashes). `workers` shares each block's flip masks among threads; numpy releases the GIL in
the bulk of the work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from numpy.typing import NDArray

HASH_BITS = 64
# Largest threshold the index accepts. The work grows steeply with the threshold (the flip masks
# per block grow like C(21, r)): grouping 1,000,000 random hashes took about 1 s at threshold 4,
# 4 s at 8, 13-17 s at 10 and 55 s at 12 on one shared core of the development machine (with
# workers=2: 2.8 s at 8, 9 s at 10, 37 s at 12), in about 100 MiB; bench_similar_index measures it.
MAX_THRESHOLD = 12

Pairs = NDArray[np.int64]
Hashes = NDArray[np.uint64]
# uint64 (or any integer dtype: signed values are read as their 64-bit two's complement), or ints
HashInput = NDArray[np.integer] | Sequence[int]

_ALL_BITS = (1 << 64) - 1

_MAX_BLOCK_BITS = 22  # direct-address tables of 2**22 int32 bucket starts (16 MiB) at most
_BRUTE_CHUNK = 1 << 21  # pair distances computed at once by the all-pairs compare
_PROBE_CHUNK = 1 << 18  # probes (masks x hashes) handled in one vectorised pass


@dataclass(frozen=True, slots=True)
class _Cost:
    """Nanoseconds per unit of work on one (shared) core of the development machine."""

    build: float = 60.0  # per hash and block: key, composite sort, gathers
    table: float = 1.5  # per direct-address table slot and block
    probe_small: float = 2.0  # per probe (hash x flip mask) into a table that fits in cache
    probe_large: float = 5.0  # ... into a 2**22-slot table
    hit: float = 15.0  # per candidate pair: bucket lookup, distance check
    mask: float = 20_000.0  # per batch of flip masks: numpy call overhead
    brute: float = 1.2  # per pair in the all-pairs compare

    def probe(self, bits: int) -> float:
        share = min(1.0, max(0.0, (bits - 16) / 6))
        return self.probe_small + share * (self.probe_large - self.probe_small)


_COST = _Cost()


@dataclass(frozen=True, slots=True)
class Block:
    """Bits [shift, shift + bits) of the hash, probed up to `radius` flipped bits."""

    shift: int
    bits: int
    radius: int

    @property
    def mask(self) -> int:
        return (1 << self.bits) - 1

    def key_distance(self, diff: NDArray[np.uint64]) -> NDArray[np.uint8]:
        """Hamming distance of two hashes' keys in this block, from the xor of the hashes."""
        distance: NDArray[np.uint8] = np.bitwise_count((diff >> np.uint64(self.shift)) & np.uint64(self.mask))
        return distance


@dataclass(frozen=True, slots=True)
class IndexPlan:
    """How `similar_pairs` searches: multi-index blocks, or (no blocks) the all-pairs compare."""

    threshold: int
    blocks: tuple[Block, ...]
    estimated_seconds: float

    @property
    def brute_force(self) -> bool:
        return not self.blocks

    @property
    def probes_per_hash(self) -> int:
        """Flip masks over all blocks (weight 1..radius); each is probed from half the hashes."""
        return sum(_masks_within(block.bits, block.radius) for block in self.blocks if block.radius >= 0)

    def describe(self) -> str:
        if self.brute_force:
            return "all pairs"
        used = [block for block in self.blocks if block.radius >= 0]
        bits = "/".join(str(block.bits) for block in used)
        radii = "/".join(str(block.radius) for block in used)
        return f"{len(used)} blocks of {bits} bits, radius {radii}, {self.probes_per_hash} masks"


def similar_pairs(hashes: HashInput, threshold: int, *, plan: IndexPlan | None = None, workers: int = 1) -> Pairs:
    """Every index pair (i, j), i < j, whose hashes differ in at most `threshold` bits.

    Returns a (k, 2) int64 array sorted by i then j. `plan` forces a search plan (tests and the
    benchmark); by default `plan_index` chooses one for the number of distinct hashes.
    `workers` > 1 shares each block's probes among that many threads (numpy releases the GIL
    in the bulk of the work: about 1.8 times faster with 2 threads on 2 idle cores).
    """
    values = _as_hashes(hashes)
    _check_threshold(threshold, MAX_THRESHOLD)
    distinct, inverse = _distinct(values)
    found = _distinct_pairs(distinct, threshold, plan, workers)
    return _expand_pairs(found, inverse, len(distinct))


def group_similar(
    hashes: HashInput, threshold: int, *, plan: IndexPlan | None = None, workers: int = 1
) -> list[list[int]]:
    """Connected components of `similar_pairs`: each group has two or more indices, ascending;
    groups are ordered by their smallest index. `plan` and `workers` as for `similar_pairs`."""
    values = _as_hashes(hashes)
    _check_threshold(threshold, MAX_THRESHOLD)
    distinct, inverse = _distinct(values)
    found = _distinct_pairs(distinct, threshold, plan, workers)
    roots = _component_roots(len(distinct), found)
    return _groups(roots[inverse])


def brute_force_pairs(hashes: HashInput, threshold: int) -> Pairs:
    """The all-pairs reference for `similar_pairs` (same result, same order), compared in chunks
    of a few million pairs so memory stays bounded whatever the number of hashes."""
    values = _as_hashes(hashes)
    _check_threshold(threshold, HASH_BITS)
    return _brute_force(values, threshold)


def plan_index(count: int, threshold: int) -> IndexPlan:
    """The cheapest search plan for `count` distinct hashes by the cost model: the all-pairs
    compare, or m blocks (3 to 16, at most 22 bits each) with the radii that minimise the work."""
    _check_threshold(threshold, HASH_BITS)
    pair_count = count * (count - 1) / 2
    best = IndexPlan(threshold, (), pair_count * _COST.brute * 1e-9)
    for block_count in range(-(-HASH_BITS // _MAX_BLOCK_BITS), 17):
        for widest in range(block_count):
            bit_counts = _split_bits(block_count, widest)
            blocks = _radii_for(bit_counts, count, threshold) if bit_counts else None
            if blocks is None:
                continue
            seconds = sum(_block_cost(block.bits, block.radius, count) for block in blocks) * 1e-9
            if seconds < best.estimated_seconds:
                best = IndexPlan(threshold, blocks, seconds)
    return best


def multi_index_plan(bit_counts: tuple[int, ...], radii: tuple[int, ...], threshold: int) -> IndexPlan:
    """A plan with the given block widths (summing to 64, each at most 22) and radii (-1: block
    not probed); raises ValueError unless the radii cover the threshold."""
    if sum(bit_counts) != HASH_BITS or len(radii) != len(bit_counts):
        raise ValueError("blocks must cover the 64 bits, one radius per block")
    if any(not 1 <= bits <= _MAX_BLOCK_BITS for bits in bit_counts) or any(r < -1 for r in radii):
        raise ValueError(f"blocks are 1..{_MAX_BLOCK_BITS} bits, radii -1 or more")
    if sum(r + 1 for r in radii) <= threshold:
        raise ValueError(f"radii {radii} do not cover threshold {threshold}")
    shifts = np.cumsum((0, *bit_counts[:-1]))
    blocks = tuple(Block(int(shift), bits, r) for shift, bits, r in zip(shifts, bit_counts, radii, strict=True))
    return IndexPlan(threshold, blocks, 0.0)


# --- input ------------------------------------------------------------------------------------


def _as_hashes(hashes: HashInput) -> Hashes:
    if not isinstance(hashes, np.ndarray):  # Python ints, possibly above 2**63 or negative
        if not all(isinstance(value, int | np.integer) and not isinstance(value, bool) for value in hashes):
            raise TypeError("hashes must be integers")
        return np.fromiter((int(value) & _ALL_BITS for value in hashes), dtype=np.uint64, count=len(hashes))
    if hashes.ndim != 1:
        raise ValueError("hashes must be a one-dimensional array")
    if hashes.dtype.kind == "i":  # e.g. read back from SQLite: the same 64 bits, two's complement
        return hashes.astype(np.int64).view(np.uint64)
    if hashes.dtype.kind == "u":
        return hashes.astype(np.uint64, copy=False)
    raise TypeError(f"hashes must be integers, not {hashes.dtype}")


def _check_threshold(threshold: int, limit: int) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, int | np.integer):
        raise TypeError("threshold must be an integer")
    if not 0 <= threshold <= limit:
        raise ValueError(f"threshold must be between 0 and {limit}")


def _distinct(values: Hashes) -> tuple[Hashes, NDArray[np.int64]]:
    """The distinct hashes (ascending) and, for each input hash, the index of its distinct value."""
    order = np.argsort(values)
    ordered = values[order]
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


# --- pairs of distinct hashes -----------------------------------------------------------------


def _distinct_pairs(distinct: Hashes, threshold: int, plan: IndexPlan | None, workers: int) -> Pairs:
    """Pairs (i, j), i < j, of indices into `distinct` (all different), sorted."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError("workers must be a positive integer")
    if len(distinct) < 2 or threshold == 0:  # distinct hashes are never at distance 0
        return np.zeros((0, 2), dtype=np.int64)
    chosen = plan if plan is not None else plan_index(len(distinct), threshold)
    if chosen.threshold != threshold:
        raise ValueError(f"plan is for threshold {chosen.threshold}, not {threshold}")
    if chosen.brute_force:
        return _brute_force(distinct, threshold)
    return _sorted_pairs(_multi_index(distinct, threshold, chosen.blocks, workers), len(distinct))


def _brute_force(values: Hashes, threshold: int) -> Pairs:
    count = len(values)
    rows = max(1, _BRUTE_CHUNK // max(count, 1))
    firsts: list[NDArray[np.int64]] = []
    seconds: list[NDArray[np.int64]] = []
    for start in range(0, count - 1, rows):
        stop = min(count - 1, start + rows)
        distances = np.bitwise_count(values[start:stop, None] ^ values[None, start + 1 :])
        row, column = np.nonzero(distances <= threshold)
        column += start + 1
        row += start
        later = column > row
        firsts.append(row[later].astype(np.int64))
        seconds.append(column[later].astype(np.int64))
    return _sorted_pairs(_stack(firsts, seconds), count)


def _multi_index(values: Hashes, threshold: int, blocks: tuple[Block, ...], workers: int) -> Pairs:
    found: list[Pairs] = []
    for position, block in enumerate(blocks):
        if block.radius < 0:
            continue
        search = _BlockSearch(values, threshold, block, blocks[:position])
        found.append(search.same_key_pairs())
        shares = _share_out(block, workers)
        if len(shares) == 1:
            found.append(search.flipped_pairs(shares[0]))
        elif shares:
            with ThreadPoolExecutor(len(shares), thread_name_prefix="similar-index") as pool:
                found.extend(pool.map(search.flipped_pairs, shares))
        del search  # one block's tables at a time
    return np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)


def _share_out(block: Block, workers: int) -> list[list[int]]:
    """The block's mask groups (by highest bit) shared among up to `workers` threads, each
    share about the same number of masks (plus one pass for the group's set-up)."""
    if block.radius < 1:
        return []
    weights = {high: len(_masks_with_high_bit(high, block.radius)) + 1 for high in range(block.bits)}
    shares: list[list[int]] = [[] for _ in range(min(workers, block.bits))]
    loads = [0] * len(shares)
    for high in sorted(weights, key=weights.__getitem__, reverse=True):
        lightest = loads.index(min(loads))
        shares[lightest].append(high)
        loads[lightest] += weights[high]
    return [sorted(share) for share in shares]


class _BlockSearch:
    """One block's hashes sorted by block key with their bucket tables, and the pairs within the
    threshold found from them that no earlier block reports."""

    def __init__(self, values: Hashes, threshold: int, block: Block, earlier: tuple[Block, ...]) -> None:
        count = len(values)
        index_bits = max(1, (count - 1).bit_length())
        keys = ((values >> np.uint64(block.shift)) & np.uint64(block.mask)).astype(np.int64)
        composite = (keys << index_bits) | np.arange(count, dtype=np.int64)
        del keys
        composite.sort()
        self.sorted_keys = composite >> index_bits
        self.items = composite & ((1 << index_bits) - 1)  # input index at each sorted position
        del composite
        self.sorted_values = values[self.items]
        self.buckets = _Buckets(self.sorted_keys, block.bits)
        self.threshold = threshold
        self.block = block
        self.earlier = [other for other in earlier if other.radius >= 0]

    def _keep(
        self,
        found: list[Pairs],
        left: NDArray[np.int64],
        right: NDArray[np.int64],
        diff: Hashes,
        lefts: NDArray[np.int64] | None = None,
    ) -> None:
        """Add to `found` the candidate pairs (positions in sorted order, or for `left` indices
        into `lefts` which holds the positions; the xor of their hashes) within the threshold
        that no earlier block finds, as input indices."""
        close = np.flatnonzero(np.bitwise_count(diff) <= self.threshold)
        if not close.size:
            return
        diff = diff[close]
        new = np.ones(close.size, dtype=bool)
        for other in self.earlier:
            new &= other.key_distance(diff) > other.radius
        close = close[new]
        left_positions = left[close] if lefts is None else lefts[left[close]]
        found.append(np.stack((self.items[left_positions], self.items[right[close]]), axis=1))

    def same_key_pairs(self) -> Pairs:
        """Pairs inside a bucket: sorted neighbours at gap 1, 2, ... with equal keys."""
        found: list[Pairs] = []
        keys, values = self.sorted_keys, self.sorted_values
        gap = 1
        left = np.flatnonzero(keys[1:] == keys[:-1])
        while left.size:
            self._keep(found, left, left + gap, values[left] ^ values[left + gap])
            gap += 1
            left = left[left + gap < len(keys)]
            left = left[keys[left] == keys[left + gap]]
        return _concat_pairs(found)

    def flipped_pairs(self, highs: Sequence[int]) -> Pairs:
        """Pairs whose keys differ by a mask of weight 1..radius with its highest bit in `highs`:
        probed only from keys with that bit clear, so each pair of keys is met once."""
        found: list[Pairs] = []
        keys, values, buckets = self.sorted_keys, self.sorted_values, self.buckets
        for high in highs:
            masks = _masks_with_high_bit(high, self.block.radius)
            probers = np.flatnonzero((keys & (1 << high)) == 0)
            if not probers.size:
                continue
            prober_keys = keys[probers]
            prober_values = values[probers]
            per_pass = max(1, _PROBE_CHUNK // len(probers))
            targets = np.empty(len(probers) * min(per_pass, len(masks)), dtype=np.int64)
            occupied = np.empty(len(targets), dtype=bool)
            for first in range(0, len(masks), per_pass):
                batch = masks[first : first + per_pass]
                size = len(batch) * len(probers)
                if len(batch) == 1:
                    np.bitwise_xor(prober_keys, batch[0], out=targets[:size])
                else:
                    np.bitwise_xor(prober_keys[None, :], batch[:, None], out=targets[:size].reshape(len(batch), -1))
                np.take(buckets.occupied, targets[:size], out=occupied[:size], mode="clip")  # keys are in range
                hits = np.flatnonzero(occupied[:size])
                if not hits.size:
                    continue
                source = hits if len(batch) == 1 else hits % len(probers)
                starts = buckets.starts[targets[hits]].astype(np.int64)
                several = np.flatnonzero(starts < 0)  # buckets holding several hashes
                if several.size:
                    starts[several] = -1 - starts[several]
                self._keep(found, source, starts, prober_values[source] ^ values[starts], probers)
                if several.size:  # their second hashes, then the third of those holding three, ...
                    source, starts = source[several], starts[several]
                    sizes = buckets.sizes[starts]
                    step = 1
                    while source.size:
                        right = starts + step
                        self._keep(found, source, right, prober_values[source] ^ values[right], probers)
                        step += 1
                        more = np.flatnonzero(sizes > step)
                        source, starts, sizes = source[more], starts[more], sizes[more]
        return _concat_pairs(found)


class _Buckets:
    """Direct-address tables over all 2**bits keys of a block: whether any hash has the key, and
    where the key's run of hashes starts in the sorted order (-1 - start if the run holds several
    hashes); and each run's length, at its start."""

    def __init__(self, sorted_keys: NDArray[np.int64], bits: int) -> None:
        count = len(sorted_keys)
        run_starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
        run_keys = sorted_keys[run_starts]
        run_lengths = np.diff(np.append(run_starts, count))
        self.occupied = np.zeros(1 << bits, dtype=bool)
        self.occupied[run_keys] = True
        self.starts = np.zeros(1 << bits, dtype=np.int64 if count >= 2**31 else np.int32)
        self.starts[run_keys] = np.where(run_lengths > 1, -1 - run_starts, run_starts)
        self.sizes = np.zeros(count, dtype=np.int32)
        self.sizes[run_starts] = run_lengths


def _masks_with_high_bit(high: int, radius: int) -> NDArray[np.int64]:
    """Every mask whose highest set bit is `high` and with at most `radius` bits set."""
    masks = [
        (1 << high) | sum(1 << bit for bit in lower)
        for weight in range(radius)
        for lower in combinations(range(high), weight)
    ]
    return np.array(masks, dtype=np.int64)


def _masks_within(bits: int, radius: int) -> int:
    return sum(math.comb(bits, weight) for weight in range(1, radius + 1))


# --- plans --------------------------------------------------------------------------------------


def _split_bits(block_count: int, widest: int = 0) -> tuple[int, ...] | None:
    """64 bits cut into `block_count` contiguous blocks: `widest` blocks of the widest size a
    table allows (wide blocks hold fewer hashes per bucket), then the rest as even as can be,
    the wider ones first; None if the other blocks would be left less than a bit each."""
    rest = HASH_BITS - widest * _MAX_BLOCK_BITS
    others = block_count - widest
    if rest < others:
        return None
    base, wider = divmod(rest, others)
    return (*[_MAX_BLOCK_BITS] * widest, *[base + 1 if position < wider else base for position in range(others)])


def _block_cost(bits: int, radius: int, count: int) -> float:
    """Estimated nanoseconds for one block probed to `radius` (-1: not probed) over `count` hashes."""
    if radius < 0:
        return 0.0
    per_key = count / (1 << bits)  # expected hashes per bucket, for uniform hashes
    cost = count * _COST.build + (1 << bits) * _COST.table + count * per_key / 2 * _COST.hit
    masks = _masks_within(bits, radius)
    batches = min(masks, max(bits, masks * count / 2 / _PROBE_CHUNK))
    return cost + masks * count / 2 * (_COST.probe(bits) + per_key * _COST.hit) + batches * _COST.mask


def _radii_for(bit_counts: tuple[int, ...], count: int, threshold: int) -> tuple[Block, ...] | None:
    """The radii (each -1 or more, sum of radius + 1 over blocks = threshold + 1) minimising the
    summed block cost, by dynamic programming over the blocks; None if the blocks are too wide."""
    if max(bit_counts) > _MAX_BLOCK_BITS:
        return None
    units = threshold + 1
    # best[u] = (cost, radii) for the blocks so far using u units
    best: list[tuple[float, tuple[int, ...]] | None] = [(0.0, ())] + [None] * units
    for bits in bit_counts:
        step: list[tuple[float, tuple[int, ...]] | None] = [None] * (units + 1)
        for used, entry in enumerate(best):
            if entry is None:
                continue
            for extra in range(units - used + 1):
                cost = entry[0] + _block_cost(bits, extra - 1, count)
                current = step[used + extra]
                if current is None or cost < current[0]:
                    step[used + extra] = (cost, (*entry[1], extra - 1))
        best = step
    final = best[units]
    if final is None:
        return None
    shifts = np.cumsum((0, *bit_counts[:-1]))
    return tuple(Block(int(shift), bits, r) for shift, bits, r in zip(shifts, bit_counts, final[1], strict=True))


# --- results ------------------------------------------------------------------------------------


def _concat_pairs(found: list[Pairs]) -> Pairs:
    return np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)


def _stack(firsts: list[NDArray[np.int64]], seconds: list[NDArray[np.int64]]) -> Pairs:
    if not firsts:
        return np.zeros((0, 2), dtype=np.int64)
    return np.stack((np.concatenate(firsts), np.concatenate(seconds)), axis=1)


def _sorted_pairs(pairs: Pairs, count: int) -> Pairs:
    """Each pair as (smaller, larger), the pairs sorted; `count` bounds the indices."""
    low = np.minimum(pairs[:, 0], pairs[:, 1])
    high = np.maximum(pairs[:, 0], pairs[:, 1])
    codes = np.sort(low * count + high)
    return np.stack((codes // count, codes % count), axis=1) if count else pairs


def _concat_ranges(starts: NDArray[np.int64], sizes: NDArray[np.int64]) -> NDArray[np.int64]:
    """starts[0] .. starts[0]+sizes[0]-1, starts[1] .. , ... in one array."""
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    run_offsets = np.cumsum(sizes) - sizes
    return np.repeat(starts - run_offsets, sizes) + np.arange(total, dtype=np.int64)


def _expand_pairs(found: Pairs, inverse: NDArray[np.int64], distinct_count: int) -> Pairs:
    """Pairs of distinct hashes as pairs of input indices: every copy of one hash with every
    copy of the other, plus every two copies of the same hash (distance 0)."""
    count = len(inverse)
    if distinct_count == count:  # no repeated hash: one input index per distinct value
        single = np.empty(count, dtype=np.int64)
        single[inverse] = np.arange(count, dtype=np.int64)
        return _sorted_pairs(single[found], count) if count else found
    members = np.argsort(inverse, kind="stable")  # input indices grouped by distinct value
    copies = np.bincount(inverse, minlength=distinct_count)
    first_member = np.cumsum(copies) - copies
    # across values: copies of found[:, 0] x copies of found[:, 1]
    left_sizes = copies[found[:, 0]]
    right_sizes = copies[found[:, 1]]
    widths = np.repeat(right_sizes, left_sizes)
    left = np.repeat(_concat_ranges(first_member[found[:, 0]], left_sizes), widths)
    right = _concat_ranges(np.repeat(first_member[found[:, 1]], left_sizes), widths)
    # within a value: member k with members k+1 .. end
    repeated = np.flatnonzero(copies > 1)
    positions = _concat_ranges(first_member[repeated], copies[repeated])
    ends = np.repeat(first_member[repeated] + copies[repeated], copies[repeated])
    after = ends - positions - 1
    within_left = np.repeat(positions, after)
    within_right = _concat_ranges(positions + 1, after)
    pairs = np.stack(
        (members[np.concatenate((left, within_left))], members[np.concatenate((right, within_right))]), axis=1
    )
    return _sorted_pairs(pairs, count)


def _component_roots(count: int, pairs: Pairs) -> NDArray[np.int64]:
    """For each node, the smallest node of its connected component (hook larger roots onto
    smaller ones, then jump pointers to the root, until every edge is inside one tree)."""
    parent = np.arange(count, dtype=np.int64)
    left, right = pairs[:, 0], pairs[:, 1]
    while True:
        left_root, right_root = parent[left], parent[right]
        apart = left_root != right_root
        if not apart.any():
            return parent
        low = np.minimum(left_root[apart], right_root[apart])
        high = np.maximum(left_root[apart], right_root[apart])
        np.minimum.at(parent, high, low)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def _groups(roots: NDArray[np.int64]) -> list[list[int]]:
    """Indices sharing a root, groups of two or more, members ascending, by smallest member."""
    order = np.argsort(roots, kind="stable")
    ordered = roots[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    sizes = np.diff(np.append(starts, len(ordered)))
    starts, sizes = starts[sizes > 1], sizes[sizes > 1]
    by_smallest = np.argsort(order[starts], kind="stable")
    members = order.tolist()
    return [
        members[start : start + size]
        for start, size in zip(starts[by_smallest].tolist(), sizes[by_smallest].tolist(), strict=True)
    ]
