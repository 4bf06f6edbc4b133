"""Similar images: precision and recall of the perceptual hash + grouping on the near-copy truth,
per kind of edit, a threshold sweep with a recommended default, and the hashing throughput.

The truth library (`benchmarks.near_copies`: 1-4 MP originals, one copy per edit kind, two
look-alike negatives each; 64 originals = 640 files by default) is generated once under
`DATA_DIR/near-copies/` and reused while its options are unchanged. Every file is hashed with
`server.similar.phash.hash_images` and grouped with `server.similar.index.group_similar` at the
threshold (checked against the all-pairs grouping); the sweep groups the all-pairs distances
at every threshold from 0 to max(16, index.MAX_THRESHOLD).

How it scores (pairs of files, what a user sees): every two files in one reported group make
a reported pair; it is a true positive when both are copies of the same original (the
original included). Recall is over all true pairs (every two files of one original's group).
Negatives count: a pair holding a negative is always a false positive, in the overall
precision and in the row of each kind in the pair. A kind's row counts the pairs holding a
file of that kind; a negative kind's row shows its false pairs and how many of its files
were grouped with the original they resemble (it has no true pairs, so no recall). Beside
each kind: its files' Hamming distances to their original (min / median / p95 / max).

The recommended threshold meets every goal at itself and at the two thresholds on either side,
with the widest margin to the goals, the smaller on a tie (see `recommend`).

Goals: precision >= 0.98 and recall >= 0.95 overall and for each edit kind at the threshold
(default: phash.DEFAULT_THRESHOLD); hashing >= 150 images/s per core on the truth's 1-4 MP
JPEGs, judged on the single process's images per CPU-second (median of the rounds; the
wall-clock rate and a pool of 2 processes are printed beside it). Exit 1 when a goal is missed.
`python -m benchmarks.bench_similar [--originals N] [--rounds N] [--threshold T]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import combinations
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import numpy.typing as npt

from server.similar import index, phash

from . import near_copies
from .near_copies import EDIT_KINDS, NEGATIVE_KINDS, ORIGINAL, Options, Truth
from .settings import DATA_DIR

PRECISION_GOAL = 0.98
RECALL_GOAL = 0.95
THROUGHPUT_GOAL = 150.0  # images per CPU-second (one core busy for a second)
SWEEP_TOP = 16  # the sweep covers 0..max(SWEEP_TOP, index.MAX_THRESHOLD)
THROUGHPUT_FILES = 240  # the 1-4 MP JPEGs hashed per throughput round
Pair = tuple[str, str]
Hashes = npt.NDArray[np.uint64]


# -- scoring (pure) -------------------------------------------------------------------------------


def pair(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


def reported_pairs(groups: Iterable[Sequence[str]]) -> set[Pair]:
    """Every two files of one reported group."""
    return {pair(a, b) for group in groups for a, b in combinations(group, 2)}


def true_pairs(truth: Truth) -> set[Pair]:
    """Every two files that are copies of one original (a negative is a group of its own)."""
    members: dict[str, list[str]] = {}
    for path, entry in truth.items():
        members.setdefault(entry["group"], []).append(path)
    return reported_pairs(members.values())


@dataclass(frozen=True)
class Score:
    """Pair counts for one kind of file (or overall)."""

    kind: str
    files: int
    true_pairs: int  # pairs that should be reported
    reported: int  # pairs reported
    true_positives: int
    grouped_negatives: int = 0  # negatives grouped with the original they resemble

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.reported if self.reported else None

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.true_pairs if self.true_pairs else None

    @property
    def false_positives(self) -> int:
        return self.reported - self.true_positives

    def meets(self, precision_goal: float = PRECISION_GOAL, recall_goal: float = RECALL_GOAL) -> bool:
        """Precision and recall at their goals; nothing reported is no false positive."""
        precision, recall = self.precision, self.recall
        return (precision is None or precision >= precision_goal) and (recall is None or recall >= recall_goal)


def score(truth: Truth, groups: Iterable[Sequence[str]]) -> tuple[Score, dict[str, Score]]:
    """The overall score and one per kind of file present in the truth."""
    expected = true_pairs(truth)
    reported = reported_pairs(groups)
    found = expected & reported
    overall = Score("overall", len(truth), len(expected), len(reported), len(found))
    group_of = {path: entry["group"] for path, entry in truth.items()}
    per_kind: dict[str, Score] = {}
    kinds = sorted({entry["kind"] for entry in truth.values()}, key=_kind_order)
    for kind in kinds:
        files = {path for path, entry in truth.items() if entry["kind"] == kind}

        def involves(pairs: set[Pair], files: set[str] = files) -> int:
            return sum(1 for a, b in pairs if a in files or b in files)

        grouped = 0
        if kind in NEGATIVE_KINDS:
            grouped = len(
                {
                    negative
                    for a, b in reported
                    for negative, other in ((a, b), (b, a))
                    if negative in files and group_of[other] == truth[negative]["negative_of"]
                }
            )
        per_kind[kind] = Score(kind, len(files), involves(expected), involves(reported), involves(found), grouped)
    return overall, per_kind


def _kind_order(kind: str) -> tuple[int, str]:
    order = (ORIGINAL, *EDIT_KINDS, *NEGATIVE_KINDS)
    return (order.index(kind) if kind in order else len(order), kind)


def components(count: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components (of two or more) of the graph on 0..count-1 with these edges."""
    parent = list(range(count))

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in pairs:
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    found: dict[int, list[int]] = {}
    for node in range(count):
        found.setdefault(find(node), []).append(node)
    return [members for members in found.values() if len(members) > 1]


def distance_matrix(hashes: Hashes) -> npt.NDArray[np.uint8]:
    """All Hamming distances (fine for the ~1,000 files of the truth)."""
    distances: npt.NDArray[np.uint8] = np.bitwise_count(hashes[:, None] ^ hashes[None, :]).astype(np.uint8)
    return distances


def groups_at(distances: npt.NDArray[np.uint8], threshold: int) -> list[list[int]]:
    rows, cols = np.nonzero(np.triu(distances <= threshold, 1))
    return components(len(distances), zip(rows.tolist(), cols.tolist(), strict=True))


@dataclass(frozen=True)
class SweepRow:
    threshold: int
    overall: Score
    per_kind: dict[str, Score]

    @property
    def worst_kind_precision(self) -> float:
        values = [s.precision for k, s in self.per_kind.items() if k not in NEGATIVE_KINDS and s.precision is not None]
        return min(values, default=1.0)

    @property
    def worst_kind_recall(self) -> float:
        values = [s.recall for k, s in self.per_kind.items() if k not in NEGATIVE_KINDS and s.recall is not None]
        return min(values, default=1.0)

    @property
    def meets_goals(self) -> bool:
        scores = [self.overall, *(s for k, s in self.per_kind.items() if k not in NEGATIVE_KINDS)]
        return all(s.meets() for s in scores)

    @property
    def margin(self) -> float:
        """The smallest distance to a goal, as a share of the room above it (1 = perfect)."""
        precision = min(self.overall.precision or 1.0, self.worst_kind_precision)
        recall = min(self.overall.recall or 1.0, self.worst_kind_recall)
        return min((precision - PRECISION_GOAL) / (1 - PRECISION_GOAL), (recall - RECALL_GOAL) / (1 - RECALL_GOAL))


def recommend(rows: Sequence[SweepRow], headroom: int = 2, limit: int | None = None) -> int | None:
    """The threshold to use by default: one meeting every goal at itself and at `headroom`
    thresholds either side (so a slightly harder edit, or a slightly bigger library, does not
    tip it over), with the widest margin to the goals; on a tie the smaller (false pairs grow
    with the library, so the lower threshold is the safer one). Without such a robust
    threshold, the plain best one; None when no threshold meets the goals. `limit`: the
    largest threshold allowed (the index's MAX_THRESHOLD)."""
    meets = {row.threshold: row.meets_goals for row in rows}
    allowed = [row for row in rows if row.meets_goals and (limit is None or row.threshold <= limit)]
    if not allowed:
        return None
    robust = [
        row for row in allowed if all(meets.get(row.threshold + step, False) for step in range(-headroom, headroom + 1))
    ]
    best = max(robust or allowed, key=lambda row: (round(row.margin, 6), -row.threshold))
    return best.threshold


# -- data and hashing ------------------------------------------------------------------------------


def ensure_truth(options: Options, workers: int = 2) -> tuple[Path, Truth]:
    """The near-copy library for these options under DATA_DIR/near-copies, made once."""
    folder = DATA_DIR / "near-copies"
    name = f"lib-{options.originals}-s{options.seed}-{options.min_mp:g}-{options.max_mp:g}mp"
    root, truth_path = folder / name, folder / f"{name}.truth.json"
    wanted = json.loads(json.dumps(near_copies.truth_document({}, options)["options"]))  # tuples as lists
    if root.is_dir() and truth_path.is_file():
        try:
            truth = near_copies.read_truth(truth_path)
            if json.loads(truth_path.read_text())["options"] == wanted:
                return root, truth
        except (ValueError, KeyError):
            pass
    print(f"generating {root} ({options.originals} originals) …", file=sys.stderr, flush=True)
    if root.exists():
        shutil.rmtree(root)
    truth = near_copies.generate(root, options, workers)
    near_copies.write_truth(truth_path, truth, options)
    return root, truth


def hash_all(root: Path, paths: list[str]) -> Hashes:
    infos = phash.hash_images(str(root), paths)
    missing = [path for path, info in zip(paths, infos, strict=True) if info is None]
    if missing:
        raise RuntimeError(f"{len(missing)} truth files were not hashed, e.g. {missing[:3]}")
    return np.array([info.phash for info in infos if info is not None], dtype=np.uint64)


def _all_cores() -> None:
    """Pool worker set-up: the harness is pinned to one core, its workers may use every one."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, range(os.cpu_count() or 1))


def timed_hash(root: str, paths: list[str]) -> tuple[int, float]:
    """Hash the files (the pool's task); returns (images hashed, CPU seconds this process spent)."""
    started = time.process_time()
    infos = phash.hash_images(root, paths)
    return sum(1 for info in infos if info is not None), time.process_time() - started


@dataclass(frozen=True)
class Rate:
    """One throughput round: images per wall-clock second per process, and per CPU-second."""

    per_second: float
    per_cpu_second: float


def throughput(root: Path, files: list[str], rounds: int) -> tuple[list[Rate], list[Rate]]:
    """Per core: single process, and a pool of 2 processes (its wall-clock rate ÷ 2, and the
    images per CPU-second its workers spent). Page cache warm."""
    for path in files:
        (root / path).read_bytes()
    single = []
    for _ in range(rounds):
        started, cpu_started = time.perf_counter(), time.process_time()
        phash.hash_images(str(root), files)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        single.append(Rate(len(files) / wall, len(files) / cpu))
    pooled = []
    chunks = [files[i : i + 16] for i in range(0, len(files), 16)]
    context = get_context("forkserver")
    with ProcessPoolExecutor(max_workers=2, mp_context=context, initializer=_all_cores) as pool:
        list(pool.map(timed_hash, [str(root)] * 2, [files[:4], files[4:8]]))  # start and import
        for _ in range(rounds):
            started = time.perf_counter()
            done = list(pool.map(timed_hash, [str(root)] * len(chunks), chunks))
            wall = time.perf_counter() - started
            count, cpu = sum(n for n, _ in done), sum(c for _, c in done)
            pooled.append(Rate(count / wall / 2, count / cpu))
    return single, pooled


# -- report ----------------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
    return "\n".join(lines)


def ratio_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def distance_summary(values: Sequence[int]) -> str:
    if not values:
        return "—"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{ordered[0]} / {statistics.median(ordered):g} / {p95} / {ordered[-1]}"


def kind_distances(truth: Truth, paths: list[str], distances: npt.NDArray[np.uint8]) -> dict[str, list[int]]:
    """Per kind, each file's distance to its original (a negative's: to the one it resembles)."""
    position = {path: i for i, path in enumerate(paths)}
    original_of = {entry["original"]: path for path, entry in truth.items() if entry["kind"] == ORIGINAL}
    found: dict[str, list[int]] = {}
    for path, entry in truth.items():
        if entry["kind"] == ORIGINAL:
            continue
        source = original_of[entry["original"]]
        found.setdefault(entry["kind"], []).append(int(distances[position[path], position[source]]))
    return found


def nearest_unrelated(truth: Truth, paths: list[str], distances: npt.NDArray[np.uint8]) -> list[int]:
    """Per file, the distance to the closest file of another group (negatives excluded)."""
    groups = np.array([truth[path]["group"] for path in paths])
    negatives = np.array([truth[path]["kind"] in NEGATIVE_KINDS for path in paths])
    masked = distances.astype(np.int16)
    masked[groups[:, None] == groups[None, :]] = 255
    masked[:, negatives] = 255
    return [int(value) for value in masked[~negatives].min(axis=1)]


def print_scores(title: str, overall: Score, per_kind: Mapping[str, Score], distances: Mapping[str, list[int]]) -> None:
    rows = []
    for kind, kind_score in [*per_kind.items(), ("overall", overall)]:
        negative = kind in NEGATIVE_KINDS
        verdict = "" if negative else ("met" if kind_score.meets() else "MISSED")
        grouped = f"{kind_score.grouped_negatives}/{kind_score.files}" if negative else ""
        rows.append(
            (
                kind,
                str(kind_score.files),
                str(kind_score.true_pairs),
                str(kind_score.reported),
                str(kind_score.false_positives),
                ratio_text(kind_score.precision),
                ratio_text(kind_score.recall),
                grouped,
                distance_summary(distances.get(kind, [])),
                verdict,
            )
        )
    header = ("kind", "files", "true pairs", "reported", "false", "precision", "recall", "negatives grouped",
              "distance to original min/median/p95/max", "")  # fmt: skip
    print(f"\n== {title} ==")
    print(table(header, rows))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--originals", type=int, default=64, help="originals in the truth (10 files each)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds")
    parser.add_argument("--threshold", type=int, default=phash.DEFAULT_THRESHOLD)
    args = parser.parse_args([] if argv is None else argv)  # `python -m benchmarks` passes none
    if not 0 <= args.threshold <= index.MAX_THRESHOLD:
        parser.error(f"--threshold must be 0..{index.MAX_THRESHOLD} (index.MAX_THRESHOLD)")
    options = Options(originals=args.originals, seed=args.seed)
    root, truth = ensure_truth(options)
    paths = sorted(truth)

    started = time.perf_counter()
    hashes = hash_all(root, paths)
    hashing_s = time.perf_counter() - started
    distances = distance_matrix(hashes)
    by_kind = kind_distances(truth, paths, distances)

    threshold = args.threshold
    grouped = index.group_similar(hashes, threshold)
    reference = groups_at(distances, threshold)
    if sorted(sorted(g) for g in grouped) != sorted(sorted(g) for g in reference):
        print(f"!! index.group_similar differs from the all-pairs grouping at threshold {threshold}")
        return 2
    overall, per_kind = score(truth, [[paths[i] for i in group] for group in grouped])
    print_scores(
        f"near-copy truth: {len(paths)} files, {options.originals} originals, {phash.HASH_NAME}, "
        f"threshold {threshold} (default {phash.DEFAULT_THRESHOLD})",
        overall,
        per_kind,
        by_kind,
    )
    nearest = nearest_unrelated(truth, paths, distances)
    print(f"  closest unrelated picture (not a negative), per file: min/median/p95/max {distance_summary(nearest)}")
    print(f"  hashed in {hashing_s:.1f} s ({len(paths) / hashing_s:.0f} images/s, all sizes and formats)")

    rows = []
    for value in range(max(SWEEP_TOP, index.MAX_THRESHOLD) + 1):
        row_overall, row_kinds = score(truth, [[paths[i] for i in g] for g in groups_at(distances, value)])
        rows.append(SweepRow(value, row_overall, row_kinds))
    best = recommend(rows, limit=index.MAX_THRESHOLD)
    negatives_grouped = [
        sum(s.grouped_negatives for k, s in row.per_kind.items() if k in NEGATIVE_KINDS) for row in rows
    ]
    negative_files = sum(1 for entry in truth.values() if entry["kind"] in NEGATIVE_KINDS)
    sweep_table = [
        (
            str(row.threshold),
            ratio_text(row.overall.precision),
            ratio_text(row.overall.recall),
            f"{row.worst_kind_precision:.3f}",
            f"{row.worst_kind_recall:.3f}",
            f"{grouped_count}/{negative_files}",
            ("met" if row.meets_goals else "")
            + (" (above index.MAX_THRESHOLD)" if row.threshold > index.MAX_THRESHOLD else "")
            + (" ← best" if row.threshold == best else ""),
        )
        for row, grouped_count in zip(rows, negatives_grouped, strict=True)
    ]
    print("\n== threshold sweep ==")
    print(table(("threshold", "precision", "recall", "worst kind P", "worst kind R", "negatives grouped", "goals"),
                sweep_table))  # fmt: skip
    print(f"  recommended threshold: {best if best is not None else 'none meets the goals'}")

    jpegs = [
        path
        for path in paths
        if truth[path]["format"] == "JPEG" and 1e6 <= truth[path]["width"] * truth[path]["height"] <= 4e6
    ][:THROUGHPUT_FILES]
    single, pooled = throughput(root, jpegs, args.rounds)
    megapixels = statistics.mean(truth[p]["width"] * truth[p]["height"] for p in jpegs) / 1e6
    print(f"\n== hashing throughput: {len(jpegs)} JPEGs of 1-4 MP (mean {megapixels:.1f} MP), {args.rounds} rounds ==")
    throughput_rows = [
        (name, f"{statistics.median(values):.0f}", f"{min(values):.0f}–{max(values):.0f}", f"≥ {THROUGHPUT_GOAL:g}")
        for name, values in (
            ("single process, per CPU-second", [r.per_cpu_second for r in single]),
            ("single process, per second", [r.per_second for r in single]),
            ("pool of 2, per CPU-second", [r.per_cpu_second for r in pooled]),
            ("pool of 2, per second ÷ 2", [r.per_second for r in pooled]),
        )
    ]
    print(table(("images per core", "median", "range", "goal"), throughput_rows))
    print(
        f"  {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; the goal is judged on the single "
        "process's images per CPU-second (outside load hardly moves it)",
        flush=True,
    )

    quality_met = overall.meets() and all(s.meets() for k, s in per_kind.items() if k not in NEGATIVE_KINDS)
    speed_met = statistics.median(r.per_cpu_second for r in single) >= THROUGHPUT_GOAL
    print(f"\nprecision/recall goals at threshold {threshold}: {'met' if quality_met else 'MISSED'}; "
          f"throughput goal: {'met' if speed_met else 'MISSED'}")  # fmt: skip
    return 0 if quality_met and speed_met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
