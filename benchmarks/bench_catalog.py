"""Catalog hot path and cold listing, against peers measured in the same run.

1. Cached `GET /api/models?site=…&limit=250` requests/s (wrk) ÷ the requests/s of a minimal
   aiohttp handler returning the very same bytes — identity and gzip. Goal ≥ 0.85 (issue #12).
2. A cold `/api/models` listing (POST /api/clear_cache first; the page cache is warm) ÷ a
   plain `os.scandir` walk (+ stat of each file, which the listing needs for sizes) of the
   same site folder in this process, run on the server's core while the server idles.
   Goal ≤ 1.5.
Also printed for reference: nginx `autoindex_format json` on one site folder, and the RSS.

Libraries: make_library.py --sites 4 --collections 250 --files 40 --max-dim 320 (big), and
--sites 3 --collections 60 --files 30 --extras --max-dim 320 (a small ordinary one). wrk runs in
5 interleaved rounds; each ratio is the median [range] of the rounds' ratios, not the best run.
Run: python -m benchmarks.bench_catalog
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

from .bench_ab import LIBRARIES
from .data import ensure_library
from .load import HttpClient, compare_wrk, run_wrk
from .processes import ServerProcess
from .report import Ratio, environment_note, format_value, print_table, throughput_rows
from .servers import start_bytes_peer, start_catalog_server, start_nginx
from .settings import on_server_core, pin_to_client_core

LISTING_GOAL = 0.85  # cached listing ÷ a minimal aiohttp handler, identity and gzip
PAGE = 250
COLD_ROUNDS = 7
ROUNDS = 5  # interleaved wrk rounds per contender (the ratio: median [range] of the rounds)
GZIP = {"Accept-Encoding": "gzip"}


def plain_walk(folder: str) -> tuple[int, int]:
    """The least a listing must do: scandir every folder, stat every file. (files, bytes)."""
    files = size = 0
    pending = [folder]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    files += 1
                    size += entry.stat().st_size
    return files, size


def clear_caches(client: HttpClient) -> None:
    cleared = client.request("POST", "/api/clear_cache")
    if cleared.status != 200:
        raise RuntimeError(f"clear_cache answered {cleared.status}")


def walk_seconds(folder: str) -> tuple[float, float]:
    """A plain walk of `folder`: (wall seconds, CPU seconds of this process)."""
    started, started_cpu = time.perf_counter(), time.process_time()
    plain_walk(folder)
    return time.perf_counter() - started, time.process_time() - started_cpu


def cold_listings(
    client: HttpClient, server: ServerProcess, library: Path, sites: list[str]
) -> tuple[list[Ratio], str]:
    """Cold listings of every site against plain walks of the same folders, interleaved.

    Each round lists every site once (caches cleared before each) and walks each folder once;
    the figures are the medians over the rounds of the summed wall times and of the summed
    CPU times (the server's from /proc around each listing request alone), and the ratio is
    the median [range] of the rounds' ratios.
    """
    wall_ours: list[float] = []
    wall_walk: list[float] = []
    cpu_ours: list[float] = []
    cpu_walk: list[float] = []
    for _ in range(COLD_ROUNDS):
        round_figures = [0.0, 0.0, 0.0, 0.0]
        for name in sites:
            clear_caches(client)  # not timed
            cpu_before = server.cpu_seconds()
            seconds = client.get(f"/api/models?site={quote(name, safe='')}&limit={PAGE}").seconds
            round_figures[2] += server.cpu_seconds() - cpu_before
            with on_server_core():
                walk, cpu = walk_seconds(str(library / name))
            round_figures[0] += seconds
            round_figures[1] += walk
            round_figures[3] += cpu
        for series, value in zip((wall_ours, wall_walk, cpu_ours, cpu_walk), round_figures, strict=True):
            series.append(value)
    note = f"cold listing, {COLD_ROUNDS} rounds: ours {_spread(wall_ours)}, walk {_spread(wall_walk)}"
    measure = f"cold /api/models ({len(sites)} sites)"

    def paired(ours: list[float], peer: list[float]) -> tuple[float, ...]:
        return tuple(a / b for a, b in zip(ours, peer, strict=True) if b)

    def row(label: str, ours: list[float], walk: list[float]) -> Ratio:
        median = statistics.median
        return Ratio(label, median(ours), median(walk), "scandir walk", "s", 1.5, False, paired(ours, walk))

    rows = [row(measure, wall_ours, wall_walk), row("  … CPU time", cpu_ours, cpu_walk)]
    return rows, note


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f} ms [{min(values) * 1000:.1f}–{max(values) * 1000:.1f}]"


def measure(library: Path) -> tuple[list[Ratio], list[str]]:
    notes = [environment_note()]
    rows: list[Ratio] = []
    with start_catalog_server(library) as ours, HttpClient(ours.url) as client:
        sites = [site["name"] for site in json.loads(client.get("/api/sites").body)["sites"]]
        path = f"/api/models?site={quote(sites[0], safe='')}&limit={PAGE}"
        identity = client.get(path)
        gzipped = client.get(path, GZIP)
        if gzipped.headers.get("content-encoding") != "gzip":
            raise RuntimeError("the catalog did not gzip a listing when asked")
        notes.append(f"listing: {path} → {len(identity.body)} bytes, {len(gzipped.body)} gzipped")

        for label, reply, headers in (("", identity, {}), (" gzip", gzipped, GZIP)):
            peer_headers = {"Content-Type": "application/json"}
            if headers:
                peer_headers["Content-Encoding"] = "gzip"
            with start_bytes_peer(reply.body, peer_headers) as peer:
                runs = compare_wrk({"ours": (ours, path), "peer": (peer, path)}, rounds=ROUNDS, headers=headers)
            notes.append(f"ours{label}: {runs['ours'].summary()}")
            notes.append(f"minimal aiohttp{label}: {runs['peer'].summary()}")
            rows += throughput_rows(f"cached /api/models{label}", runs["ours"], runs["peer"], "minimal", LISTING_GOAL)
        notes.append(f"ours RSS after load: {format_value(ours.rss_kib(), 'KiB')}")

        cold, note = cold_listings(client, ours, library, sites)
        rows += cold
        notes.append(note)

    with start_nginx(library / sites[0], "autoindex on; autoindex_format json;") as nginx:
        autoindex = run_wrk(nginx.make_url("/"), duration_s=5)
    notes.append(f"reference, nginx autoindex json of the site folder: {autoindex.summary()}")
    return rows, notes


def main() -> int:
    """Both libraries: the big one and a small ordinary one (each figure on two inputs)."""
    pin_to_client_core()
    met = True
    for name, (folder, args) in LIBRARIES.items():
        library = ensure_library(folder, *args)
        rows, notes = measure(library)
        print_table(f"catalog, {name} library ({folder})", rows, notes)
        met = met and all(row.met for row in rows)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
