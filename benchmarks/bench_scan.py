"""Duplicate scan: archive-catalog against `jdupes -r`, on three trees.

- duptree: the `make_duptree.py` tree (20,000 entries, ~4 GB, 2,000 duplicate groups,
  same-size decoys differing in the first, middle or last byte, hard links, empty files);
- ordinary: the small ordinary library (`make_library.py --sites 3 --collections 60 --files 30
  --extras --max-dim 320`, ~5,500 files, ~110 MB; many files share a size, as make_library
  derives them from a pool of images);
- unique sizes: its media copied with 1–4,096 random bytes appended (sizes mostly unique, no
  two copies equal) plus 300 exact-copy groups (~5,900 files; `data.unique_sizes_tree`).
All are generated once under DATA_DIR (see `benchmarks.settings`; `BENCH_SCALE=0.05` shrinks the
duptree and the unique-sizes tree for a smoke run). For each tree, `--rounds` (5) interleaved
rounds, ours and jdupes in alternating order, each of:

- first scan, page cache warm: `POST /api/scan` → `scan.finished` on `/ws`, hash cache
  emptied first (`POST /api/clear_cache`), against `jdupes -r -q` (goal ≤ 0.5);
- the same with the tree's data evicted (`posix_fadvise(POSIX_FADV_DONTNEED)` on every file)
  before each run (goal ≤ 0.8);
- rescan of the unchanged tree (the last results carried over, `stats.unchanged`), rescan
  after one grouped file's mtime moved (the hash cache settles all but its group), and rescan
  after a new model folder (sorting first in the first site) came with a copy of that file,
  each against the goal of ≤ 0.1 s per 20,000 files, scaled to the tree's file count;
- CPU seconds of both (ours: the server, its forkserver and hash workers).
Each row's ratio is the median [range] of the rounds' ratios (never the best run). The groups
ours and jdupes report are compared by inode (hard links are one file) with each other and
with the tree's truth; a difference fails the benchmark.

Our server runs on both cores (its workers hash in parallel; jdupes is single-threaded), the
harness listens on the WebSocket. `python -m benchmarks.bench_scan [--rounds N] [--quick]
[--tree duptree|ordinary|unique]`; `BENCH_CHECKOUT=/path/to/worktree` measures that checkout's
server (a before/after).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from .data import (
    all_files,
    ensure_duptree,
    evict_page_cache,
    library_truth,
    ordinary_library,
    unique_sizes_tree,
    warm_page_cache,
)
from .load import interleaved
from .processes import proc_stat
from .report import Ratio, add_round_options, chosen_rounds, print_table, rounds_ratio, spread
from .servers import start_catalog_server
from .settings import CHECKOUT, BenchmarkError

BOTH_CORES = os.environ.get("BENCH_SCAN_CPUS", "0,1")
RESCAN_GOAL_PER_20K_S = 0.1
Identity = tuple[int, int]


@dataclass(frozen=True)
class ScanTree:
    """A tree to scan and its true duplicate groups (paths relative to the tree)."""

    name: str
    root: Path
    truth: list[list[str]]


def duptree() -> ScanTree:
    root, truth = ensure_duptree()
    return ScanTree("duptree", root, truth)


def ordinary() -> ScanTree:
    root = ordinary_library()
    return ScanTree("ordinary library", root, library_truth(root))


def unique_sizes() -> ScanTree:
    root, truth = unique_sizes_tree()
    return ScanTree("unique sizes", root, truth)


TREES: dict[str, Callable[[], ScanTree]] = {"duptree": duptree, "ordinary": ordinary, "unique": unique_sizes}


def touch(path: Path) -> None:
    """Move a file's mtime on by a second (its bytes stay)."""
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))


def identities(root: Path, groups: list[list[str]]) -> set[frozenset[Identity]]:
    """Groups as sets of (device, inode); hard links collapse; groups of one file vanish."""
    result = set()
    for group in groups:
        ids = set()
        for path in group:
            info = os.stat(path if os.path.isabs(path) else root / path)
            ids.add((info.st_dev, info.st_ino))
        if len(ids) > 1:
            result.add(frozenset(ids))
    return result


# -- CPU time (the machine may be shared: CPU seconds are steadier than wall time) --------


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and all its live descendants (the forkserver and hash workers)."""
    table = {int(name): info for name in os.listdir("/proc") if name.isdigit() and (info := proc_stat(int(name)))}
    members, total, changed = {pid}, 0.0, True
    while changed:
        changed = False
        for child, (parent, _cpu) in table.items():
            if parent in members and child not in members:
                members.add(child)
                changed = True
    for member in members:
        if member in table:
            total += table[member][1]
    return total


# -- jdupes -----------------------------------------------------------------------------


def run_jdupes(root: Path) -> tuple[float, float, list[list[str]]]:
    """Wall seconds, CPU seconds and the groups of `jdupes -r -q`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(["jdupes", "-r", "-q", str(root)], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1):
        raise BenchmarkError(f"jdupes failed ({done.returncode}): {done.stderr[-500:]}")
    groups = [block.splitlines() for block in done.stdout.strip().split("\n\n") if block.strip()]
    return elapsed, cpu, groups


# -- ours -------------------------------------------------------------------------------


async def timed_scan(base_url: str, clear_cache: bool) -> tuple[float, dict[str, Any]]:
    """Seconds from `POST /api/scan` to `scan.finished` on the WebSocket, and the finished event."""
    async with aiohttp.ClientSession() as session:
        if clear_cache:
            async with session.post(f"{base_url}/api/clear_cache") as response:
                response.raise_for_status()
        async with session.ws_connect(f"{base_url}/ws") as ws:
            hello = await ws.receive_json(timeout=30)
            assert hello["type"] == "hello"
            started = time.perf_counter()
            async with session.post(f"{base_url}/api/scan") as response:
                if response.status != 202:
                    raise BenchmarkError(f"POST /api/scan answered {response.status}: {await response.text()}")
            while True:
                event = await ws.receive_json(timeout=300)
                if event["type"] == "scan.finished":
                    return time.perf_counter() - started, event
                if event["type"] in ("scan.failed", "scan.cancelled"):
                    raise BenchmarkError(f"scan ended with {event}")


async def fetch_groups(base_url: str) -> list[list[str]]:
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/api/duplicates") as response:
        body = await response.json()
    return [group["files"] for group in body["groups"]]


# -- the benchmark ----------------------------------------------------------------------


@contextlib.contextmanager
def new_model_folder(root: Path, copy_of: Path) -> Iterator[Path]:
    """A model folder that sorts first in the tree's first site, holding a copy of `copy_of`
    (so its group changes), removed on leaving."""
    site = min(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
    folder = root / site / "0-bench-new-model"
    folder.mkdir()
    try:
        shutil.copy2(copy_of, folder / copy_of.name)
        yield folder
    finally:
        shutil.rmtree(folder)


def measure(tree: ScanTree, rounds: int) -> tuple[list[Ratio], list[str], bool]:
    """The rounds on one tree: rows, notes, and whether ours, jdupes and the truth agree."""
    root = tree.root
    paths = all_files(root)
    files = len(paths)
    readable = [path for path in paths if os.path.isfile(path)]  # not a dangling symlink
    total_bytes = sum(os.path.getsize(path) for path in readable)
    warm_page_cache(*readable)
    figures: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    stats: dict[str, Any] = {}
    jdupes_groups: list[list[str]] = []
    touched = root / tree.truth[0][0]  # a file in a duplicate group: its group is hashed again
    with start_catalog_server(root, cpu=BOTH_CORES) as server:
        base = server.url

        def ours(clear_cache: bool) -> tuple[float, float, dict[str, Any]]:
            cpu_before = tree_cpu_seconds(server.pid)
            elapsed, event = asyncio.run(timed_scan(base, clear_cache))
            return elapsed, tree_cpu_seconds(server.pid) - cpu_before, event

        def first_scan(name: str, kind: str) -> None:
            nonlocal jdupes_groups, stats
            if name == "jdupes":
                elapsed, cpu, jdupes_groups = run_jdupes(root)
            else:
                elapsed, cpu, event = ours(clear_cache=True)
                stats = event["stats"]
            record(f"{name} {kind}", elapsed)
            record(f"{name} {kind} cpu", cpu)

        ours(clear_cache=True)  # start-up effects out of the way
        for round_number in range(rounds):
            order = interleaved(["jdupes", "ours"], round_number)
            for name in order:
                first_scan(name, "warm")
            elapsed, cpu, rescan = ours(clear_cache=False)
            if rescan["stats"]["cache_hit_rate"] != 1.0 or not rescan["stats"].get("unchanged", True):
                raise BenchmarkError(f"rescan of an unchanged tree: {rescan['stats']}")
            record("ours rescan", elapsed)
            record("ours rescan cpu", cpu)
            touch(touched)  # one file's mtime moves: the walk differs, the hash cache settles the rest
            elapsed, cpu, rescan = ours(clear_cache=False)
            if not 0.0 < rescan["stats"]["cache_hit_rate"] < 1.0 or rescan["stats"].get("unchanged"):
                raise BenchmarkError(f"rescan after a touch: {rescan['stats']}")
            record("ours touched rescan", elapsed)
            record("ours touched rescan cpu", cpu)
            with new_model_folder(root, touched):  # sorts first: a fresh split would shift every folder
                elapsed, cpu, rescan = ours(clear_cache=False)
            if rescan["stats"].get("unchanged"):
                raise BenchmarkError(f"rescan after a new model folder: {rescan['stats']}")
            record("ours new-folder rescan", elapsed)
            for name in order:
                evict_page_cache(paths)
                first_scan(name, "cold")
            warm_page_cache(*readable)
            print(f"  {tree.name}, round {round_number + 1}/{rounds} done", file=sys.stderr, flush=True)
        ours_groups = asyncio.run(fetch_groups(base))

    ours_ids = identities(root, ours_groups)
    jdupes_ids = identities(root, jdupes_groups)
    truth_ids = identities(root, tree.truth)
    same = ours_ids == jdupes_ids == truth_ids
    budget = RESCAN_GOAL_PER_20K_S * files / 20_000
    jdupes = "jdupes -r"

    def row(measure: str, ours_name: str, peer_name: str, goal: float) -> Ratio:
        return rounds_ratio(measure, figures[ours_name], figures[peer_name], jdupes, "s", goal, False)

    rows = [
        row("first scan, warm", "ours warm", "jdupes warm", 0.5),
        row("first scan, cold", "ours cold", "jdupes cold", 0.8),
        rounds_ratio(
            "rescan, tree unchanged",
            figures["ours rescan"],
            [budget] * rounds,
            f"goal {RESCAN_GOAL_PER_20K_S:g} s per 20k files",
            "s",
            1.0,
            False,
        ),
        rounds_ratio(
            "rescan, one file touched (hash cache)",
            figures["ours touched rescan"],
            [budget] * rounds,
            f"goal {RESCAN_GOAL_PER_20K_S:g} s per 20k files",
            "s",
            1.0,
            False,
        ),
        rounds_ratio(
            "rescan, a new model folder (one copy)",
            figures["ours new-folder rescan"],
            [budget] * rounds,
            f"goal {RESCAN_GOAL_PER_20K_S:g} s per 20k files",
            "s",
            1.0,
            False,
        ),
        row("first scan, warm, CPU", "ours warm cpu", "jdupes warm cpu", 1.0),
        row("rescan, CPU", "ours rescan cpu", "jdupes warm cpu", 0.3),
    ]
    per_20k = [seconds * 20_000 / files for seconds in figures["ours rescan"]]
    touched_per_20k = [seconds * 20_000 / files for seconds in figures["ours touched rescan"]]
    notes = [
        f"tree: {root}, {files:,} entries, {total_bytes / 1e9:.2f} GB, {len(truth_ids):,} duplicate groups (truth)",
        f"groups: ours {len(ours_ids):,}, jdupes {len(jdupes_ids):,}, truth {len(truth_ids):,} — "
        + ("identical (by inode)" if same else "DIFFERENT"),
        f"rescan: {spread(per_20k, 's')} per 20,000 files unchanged (results carried over), "
        f"{spread(touched_per_20k, 's')} with one file touched (the hash cache settles the rest; "
        f"goal ≤ {RESCAN_GOAL_PER_20K_S * 1000:.0f} ms)",
        "wall: " + "; ".join(f"{name} {spread(values, 's')}" for name, values in figures.items() if "cpu" not in name),
        f"first scan hashed {stats.get('hashed_bytes', 0) / 1e9:.3f} GB of {stats.get('bytes', 0) / 1e9:.3f} GB",
    ]
    return rows, notes, same


def main(argv: Sequence[str] = ()) -> int:
    """0 when every goal is met and the groups agree, 1 otherwise (`python -m benchmarks` passes
    no arguments)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_scan",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_round_options(parser)
    parser.add_argument("--tree", choices=[*TREES, "all"], default="all")
    args = parser.parse_args(list(argv))
    rounds = chosen_rounds(args)
    met = True
    for name, make in TREES.items():
        if args.tree not in (name, "all"):
            continue
        tree = make()
        rows, notes, same = measure(tree, rounds)
        notes += [
            f"ours on cores {BOTH_CORES} (2 hash workers), jdupes single-threaded; {rounds} rounds, median [range];"
            " cold = posix_fadvise DONTNEED on every file first",
            f"ours from {CHECKOUT} (BENCH_CHECKOUT)",
        ]
        print_table(f"duplicate scan, {tree.name} (lower is better)", rows, notes)
        met = met and same and all(row.met for row in rows)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
