"""Grouping perceptual hashes by Hamming distance: `server.similar.index` against the brute-force
all-pairs compare, on synthetic hashes, in one process, with as many threads as the server
groups with (`server.similar.results.GROUPING_THREADS`: one per usable core) unless `--workers`.

The data: uniformly random 64-bit hashes with a few percent replaced by near-copy clusters (2-8
copies of a seed hash, each with 0..threshold random bits flipped), written as contiguous runs
so the first `--subsample` hashes are a sample holding whole clusters. For each size and
threshold the benchmark prints:

- the time of `group_similar` over all hashes: median [range] of `--runs` runs;
- the peak memory of the first of those calls, as tracemalloc's peak of traced allocations
  (numpy reports its buffers to tracemalloc; the input array, made before, is not counted);
- the pairs `similar_pairs` finds and the groups;
- on the subsample: whether the index finds exactly the brute-force pairs (exit status 2 if not),
  the brute-force time there, and that time extrapolated quadratically to the full size (the
  all-pairs compare of 1,000,000 hashes, ~5e11 pairs, is never run).

Goal (issue #15): 1,000,000 hashes grouped in <= 10 s with <= 200 MB, judged at the default
threshold (`server.similar.phash.DEFAULT_THRESHOLD` when that module exists, else at every
threshold measured). Exit status: 0 goals met, 1 a goal missed, 2 a result differs.

Run: python -m benchmarks.bench_similar_index [--sizes 100000 1000000] [--thresholds 4 8 10 12]
     [--runs 5] [--subsample 30000] [--workers N]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from server.similar import index
from server.similar.results import GROUPING_THREADS

GOAL_COUNT = 1_000_000
GOAL_SECONDS = 10.0
GOAL_BYTES = 200 * 2**20
CLUSTERED_SHARE = 0.03


def synthetic_hashes(count: int, threshold: int, seed: int) -> NDArray[np.uint64]:
    """Random hashes with CLUSTERED_SHARE of them in contiguous near-copy clusters."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=count, dtype=np.uint64)
    sizes = rng.integers(2, 9, size=max(1, int(count * CLUSTERED_SHARE) // 5))
    starts = np.sort(rng.choice(count // 9, size=len(sizes), replace=False)) * 9  # runs never overlap
    members = np.concatenate([np.arange(start, start + size) for start, size in zip(starts, sizes, strict=True)])
    seeds = np.repeat(hashes[starts], sizes)
    flips = rng.integers(0, threshold + 1, size=len(members))
    chosen = np.argsort(rng.random((len(members), 64)), axis=1) < flips[:, None]  # that many random bits
    masks = (chosen.astype(np.uint64) << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    hashes[members] = seeds ^ masks
    return hashes


@dataclass(frozen=True, slots=True)
class Row:
    count: int
    threshold: int
    plan: str
    seconds: tuple[float, ...]
    peak_bytes: int
    pairs: int
    groups: int
    subsample: int
    exact: bool
    brute_seconds: float
    index_seconds_subsample: float

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def brute_extrapolated(self) -> float:
        return self.brute_seconds * (self.count / self.subsample) ** 2

    def meets_goal(self) -> bool:
        return self.median * GOAL_COUNT / self.count <= GOAL_SECONDS and self.peak_bytes <= GOAL_BYTES


def measure(count: int, threshold: int, runs: int, subsample: int, workers: int) -> Row:
    hashes = synthetic_hashes(count, threshold, seed=count + threshold)
    plan = index.plan_index(count, threshold)
    seconds = []
    peak = 0
    for run in range(runs):
        if run == 0:  # the first run also traces allocations: a few thousand numpy buffers, cheap
            tracemalloc.start()
        started = time.perf_counter()
        groups = index.group_similar(hashes, threshold, workers=workers)
        seconds.append(time.perf_counter() - started)
        if run == 0:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    pairs = len(index.similar_pairs(hashes, threshold, workers=workers))

    sample = hashes[: min(subsample, count)]
    started = time.perf_counter()
    found = index.similar_pairs(sample, threshold)
    index_sample_seconds = time.perf_counter() - started
    started = time.perf_counter()
    expected = index.brute_force_pairs(sample, threshold)
    brute_seconds = time.perf_counter() - started
    return Row(
        count=count,
        threshold=threshold,
        plan=plan.describe(),
        seconds=tuple(seconds),
        peak_bytes=peak,
        pairs=pairs,
        groups=len(groups),
        subsample=len(sample),
        exact=np.array_equal(found, expected),
        brute_seconds=brute_seconds,
        index_seconds_subsample=index_sample_seconds,
    )


def default_threshold() -> int | None:
    try:
        phash = importlib.import_module("server.similar.phash")
    except ImportError:
        return None
    value = getattr(phash, "DEFAULT_THRESHOLD", None)
    return value if isinstance(value, int) else None


def print_row(row: Row) -> None:
    spread = f"{min(row.seconds):.2f}–{max(row.seconds):.2f}"
    print(
        f"{row.count:>9,} {row.threshold:>3} {row.median:>7.2f} s [{spread}] {row.peak_bytes / 2**20:>7.0f} MiB"
        f" {row.pairs:>9,} {row.groups:>8,}   {'yes' if row.exact else 'NO':>5}"
        f" {row.subsample:>7,} {row.index_seconds_subsample:>7.3f} s {row.brute_seconds:>7.2f} s"
        f" {row.brute_extrapolated:>10,.0f} s   {row.plan}",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="similar-hash grouping against brute force")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--thresholds", type=int, nargs="+", default=[4, 8, 10, 12])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--subsample", type=int, default=30_000)
    parser.add_argument(
        "--workers",
        type=int,
        default=GROUPING_THREADS,
        help=f"threads sharing the probes (default {GROUPING_THREADS}, as the server)",
    )
    arguments = parser.parse_args([] if argv is None else argv)  # `python -m benchmarks` passes none
    if arguments.runs < 1 or arguments.subsample < 2:
        parser.error("--runs must be 1 or more, --subsample 2 or more")
    goal_threshold = default_threshold()
    print(
        f"group_similar on synthetic hashes ({CLUSTERED_SHARE:.0%} in near-copy clusters), one process,"
        f" {arguments.workers} thread(s);"
        f" time: median [range] of {arguments.runs} runs; peak: tracemalloc peak of the first;"
        f" brute force: run on the first --subsample hashes, extrapolated quadratically to the size"
    )
    print(
        f"{'hashes':>9} {'t':>3} {'group_similar':>22} {'peak':>11} {'pairs':>9} {'groups':>8}   exact"
        f" {'sample':>7} {'index':>9} {'brute':>9} {'brute@size':>12}   plan"
    )
    rows = []
    for count in arguments.sizes:
        for threshold in arguments.thresholds:
            row = measure(count, threshold, arguments.runs, arguments.subsample, arguments.workers)
            print_row(row)
            rows.append(row)
    judged = [row for row in rows if row.count >= GOAL_COUNT and goal_threshold in (None, row.threshold)]
    where = f"threshold {goal_threshold}" if goal_threshold is not None else "every threshold (no DEFAULT_THRESHOLD)"
    for row in judged:
        verdict = "met" if row.meets_goal() else "MISSED"
        print(
            f"goal at {row.count:,} hashes, threshold {row.threshold}: {row.median:.1f} s (<= {GOAL_SECONDS:.0f}),"
            f" {row.peak_bytes / 2**20:.0f} MiB (<= {GOAL_BYTES // 2**20}): {verdict}"
        )
    if not judged:
        print(f"goal not judged: no run at {GOAL_COUNT:,} hashes and {where}")
    if not all(row.exact for row in rows):
        print("the index and brute force DIFFER on a subsample")
        return 2
    return 0 if all(row.meets_goal() for row in judged) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
