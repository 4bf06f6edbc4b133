"""Before/after of first duplicate scans in one run: this checkout's server against another's,
both up at once, scans interleaved.

A change to the scan's first run moves it by a few percent while this host's speed drifts by
more between two runs minutes apart (jdupes alone: 143 then 181 ms on the ordinary library), so
`bench_scan` run once per checkout cannot tell. Here both servers run side by side on the same
tree and their first scans (warm page cache, hash cache emptied first: `POST /api/scan` →
`scan.finished` on `/ws`, as in `bench_scan`) alternate A B B A …, so drift falls on both alike.
Per tree it prints each checkout's median [range] and the median of the paired after ÷ before
ratios (a round's two scans ran seconds apart), and checks both found the same groups.

Run: `BENCH_BEFORE=/path/to/other/worktree python -m benchmarks.bench_scan_ab [--rounds 20]
[--tree duptree|ordinary|unique|all]` (e.g. `git worktree add /tmp/before <commit>`). Exit 0;
it reports, it sets no goal (`bench_scan` holds the goals).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from .bench_scan import BOTH_CORES, TREES, fetch_groups, timed_scan
from .data import all_files, warm_page_cache
from .load import interleaved
from .report import spread
from .servers import start_catalog_server
from .settings import REPO_ROOT, BenchmarkError


def compare(root: Path, before: Path, rounds: int) -> tuple[list[float], list[float]]:
    """Each checkout's first-scan times (seconds) over `rounds` interleaved rounds."""
    warm_page_cache(*(path for path in all_files(root) if os.path.isfile(path)))
    checkouts = {"before": before, "after": REPO_ROOT}
    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(start_catalog_server(root, checkout=path, cpu=BOTH_CORES))
            for name, path in checkouts.items()
        }
        times: dict[str, list[float]] = {name: [] for name in servers}
        for number in range(rounds):
            for name in interleaved(["before", "after"], number):
                seconds, _event = asyncio.run(timed_scan(servers[name].url, clear_cache=True))
                times[name].append(seconds)
        groups = {name: asyncio.run(fetch_groups(server.url)) for name, server in servers.items()}
    if sorted(map(sorted, groups["before"])) != sorted(map(sorted, groups["after"])):
        raise BenchmarkError("the two checkouts found different duplicate groups")
    return times["before"], times["after"]


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_scan_ab", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--tree", choices=[*TREES, "all"], default="all")
    arguments = parser.parse_args(list(argv))
    before = os.environ.get("BENCH_BEFORE")
    if not before:
        print("bench_scan_ab: nothing to compare; set BENCH_BEFORE to another checkout")
        print("(e.g. git worktree add /tmp/before <commit>)")
        return 0
    print(f"first scans, warm: before {before}, after {REPO_ROOT}, {arguments.rounds} interleaved rounds")
    columns = f"{'tree':<18}  {'before: median [range]':<30}  {'after: median [range]':<30}"
    print(f"{columns}  after ÷ before (paired median)")
    for name, make in TREES.items():
        if arguments.tree not in (name, "all"):
            continue
        tree = make()
        old, new = compare(tree.root, Path(before).resolve(), arguments.rounds)
        paired = statistics.median(after / first for first, after in zip(old, new, strict=True))
        print(f"{tree.name:<18}  {spread(old, 's'):<30}  {spread(new, 's'):<30}  {paired:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
