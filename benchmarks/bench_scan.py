"""Duplicate scan: archive-catalog against `jdupes -r` on the make_duptree.py tree.

The tree (20,000 entries, ~4 GB, 2,000 duplicate groups, same-size decoys differing in the
first, middle or last byte, hard links, empty files) is generated once under
`DATA_DIR/duptree/` (see `benchmarks.settings`). Measured in the same run, rounds
interleaved, best of each:

- first scan, page cache warm: `POST /api/scan` → `scan.finished` on `/ws`, hash cache
  emptied first (`POST /api/clear_cache`), against `jdupes -r -q` (goal ≤ 0.5);
- the same with the tree's data evicted (`posix_fadvise(POSIX_FADV_DONTNEED)` on every file)
  before each run (goal ≤ 0.8);
- rescan of the unchanged tree with the hash cache (goal ≤ 0.15 s per 20,000 files; shown
  against jdupes warm);
- the groups both report, compared by inode (hard links are one file), and against the truth.

Our server runs on both cores (its workers hash in parallel; jdupes is single-threaded), the
harness listens on the WebSocket. `python -m benchmarks.bench_scan [--rounds N]`;
`BENCH_CHECKOUT=/path/to/worktree` measures that checkout's server (a before/after).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from .processes import ServerProcess, proc_stat
from .report import Ratio, print_table
from .servers import start_catalog_server
from .settings import CHECKOUT, DATA_DIR, PYTHON, BenchmarkError, generator

BOTH_CORES = os.environ.get("BENCH_SCAN_CPUS", "0,1")
Identity = tuple[int, int]


# -- data -------------------------------------------------------------------------------


def ensure_duptree() -> tuple[Path, dict[str, Any]]:
    """The default make_duptree.py tree (seed 42), generated once and reused."""
    folder = DATA_DIR / "duptree"
    root, truth_path = folder / "tree", folder / "tree.truth.json"
    if not (root.is_dir() and truth_path.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        print(f"generating {root} (about 4 GB) …", file=sys.stderr, flush=True)
        subprocess.run([PYTHON, str(generator("make_duptree.py")), "--root", str(root), "--force"], check=True)
    truth: dict[str, Any] = json.loads(truth_path.read_text())
    return root, truth


def all_files(root: Path) -> list[str]:
    found: list[str] = []
    for folder, _dirs, names in os.walk(root):
        found.extend(os.path.join(folder, name) for name in names)
    return found


def evict(paths: list[str]) -> None:
    """Drop the files' data from the page cache (metadata stays cached, as in the issue)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm(paths: list[str]) -> None:
    buffer = bytearray(1 << 20)
    for path in paths:
        with open(path, "rb", buffering=0) as handle:
            while handle.readinto(buffer):
                pass


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


def start_ours(root: Path, cache_dir: Path) -> ServerProcess:
    return start_catalog_server(root, cpu=BOTH_CORES, cache_dir=cache_dir)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    root, truth = ensure_duptree()
    paths = all_files(root)
    total_bytes = sum(os.path.getsize(p) for p in paths)
    cache_dir = DATA_DIR / "duptree" / "catalog-cache"
    warm(paths)
    best: dict[str, float] = {}

    def keep_best(name: str, value: float) -> None:
        best[name] = min(best.get(name, float("inf")), value)

    stats: dict[str, Any] = {}
    with start_ours(root, cache_dir) as server:
        base = server.url

        def ours(clear_cache: bool) -> tuple[float, float, dict[str, Any]]:
            cpu_before = tree_cpu_seconds(server.pid)
            elapsed, event = asyncio.run(timed_scan(base, clear_cache))
            return elapsed, tree_cpu_seconds(server.pid) - cpu_before, event

        ours(clear_cache=True)  # start-up effects out of the way
        for round_number in range(args.rounds):
            elapsed, cpu, jdupes_groups = run_jdupes(root)
            keep_best("jdupes warm", elapsed)
            keep_best("jdupes warm cpu", cpu)
            elapsed, cpu, event = ours(clear_cache=True)
            keep_best("ours first warm", elapsed)
            keep_best("ours first warm cpu", cpu)
            stats = event["stats"]
            elapsed, cpu, rescan = ours(clear_cache=False)
            keep_best("ours rescan", elapsed)
            keep_best("ours rescan cpu", cpu)
            if rescan["stats"]["cache_hit_rate"] != 1.0:
                raise BenchmarkError(f"rescan hit rate {rescan['stats']['cache_hit_rate']} (expected 1.0)")
            evict(paths)
            elapsed, cpu, _ = run_jdupes(root)
            keep_best("jdupes cold", elapsed)
            evict(paths)
            elapsed, cpu, _ = ours(clear_cache=True)
            keep_best("ours first cold", elapsed)
            warm(paths)
            print(
                f"round {round_number + 1}: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in best.items()),
                file=sys.stderr,
                flush=True,
            )
        ours_groups = asyncio.run(fetch_groups(base))

    ours_ids = identities(root, ours_groups)
    jdupes_ids = identities(root, jdupes_groups)
    truth_ids = identities(root, truth["groups_default"])
    same = ours_ids == jdupes_ids == truth_ids
    files = len(paths)
    rows = [
        Ratio("first scan, warm (s)", best["ours first warm"], best["jdupes warm"], "jdupes -r", "s", 0.5, False),
        Ratio("first scan, cold (s)", best["ours first cold"], best["jdupes cold"], "jdupes -r", "s", 0.8, False),
        Ratio("rescan with hash cache (s)", best["ours rescan"], best["jdupes warm"], "jdupes -r", "s", 0.3, False),
        Ratio(
            "first scan, warm, CPU (s)",
            best["ours first warm cpu"],
            best["jdupes warm cpu"],
            "jdupes -r",
            "s",
            1.0,
            False,
        ),
        Ratio("rescan, CPU (s)", best["ours rescan cpu"], best["jdupes warm cpu"], "jdupes -r", "s", 0.3, False),
    ]
    per_20k = best["ours rescan"] * 20_000 / files
    notes = [
        f"tree: {files:,} entries, {total_bytes / 1e9:.2f} GB, {len(truth_ids):,} duplicate groups (truth)",
        f"groups: ours {len(ours_ids):,}, jdupes {len(jdupes_ids):,}, truth {len(truth_ids):,} — "
        + ("identical (by inode)" if same else "DIFFERENT"),
        f"rescan: {per_20k * 1000:.0f} ms per 20,000 files (goal ≤ 150 ms) — "
        + ("met" if per_20k <= 0.15 else "MISSED"),
        f"first scan hashed {stats.get('hashed_bytes', 0) / 1e9:.2f} GB of {stats.get('bytes', 0) / 1e9:.2f} GB",
        f"ours on cores {BOTH_CORES} (2 hash workers), jdupes single-threaded; best of {args.rounds} rounds;"
        " cold = posix_fadvise DONTNEED on every file first",
        f"ours from {CHECKOUT} (BENCH_CHECKOUT)",
    ]
    print_table("duplicate scan (lower is better)", rows, notes)
    return 0 if same and per_20k <= 0.15 and all(row.met for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
