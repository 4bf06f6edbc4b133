"""Catalog hot path and cold listing, against peers measured in the same run.

1. Cached `GET /api/models?site=…&limit=250` requests/s (wrk) ÷ the requests/s of a minimal
   aiohttp handler returning the very same bytes — identity and gzip. Goal ≥ 0.8.
2. A cold `/api/models` listing (POST /api/clear_cache first; the page cache is warm) ÷ a
   plain `os.scandir` walk (+ stat of each file, which the listing needs for sizes) of the
   same site folder in this process, run on the server's core while the server idles.
   Goal ≤ 1.5.
Also printed for reference: nginx `autoindex_format json` on one site folder, and the RSS.

Library: make_library.py --sites 4 --collections 250 --files 40 --max-dim 320.
Run: python -m benchmarks.bench_catalog
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import quote

from .data import ensure_library
from .load import HttpClient, compare_wrk, run_wrk
from .processes import ServerProcess
from .report import Ratio, environment_note, format_value, print_table, throughput_rows
from .servers import start_bytes_peer, start_catalog_server, start_nginx
from .settings import on_server_core, pin_to_client_core

LIBRARY_ARGS = ("--sites", "4", "--collections", "250", "--files", "40", "--max-dim", "320")
PAGE = 250
COLD_ROUNDS = 11
ROUNDS = 4  # interleaved wrk rounds per contender
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

    Two figures: the best wall time of each (summed over sites), and the mean CPU time of
    each (the server's from /proc around the listing request alone, so outside load hardly
    matters; it includes any background sweep that ran meanwhile).
    """
    ours: dict[str, float] = {}
    walks: dict[str, float] = {}
    walk_cpu = 0.0
    server_cpu = 0.0
    for _ in range(COLD_ROUNDS):
        for name in sites:
            clear_caches(client)  # not timed
            cpu_before = server.cpu_seconds()
            seconds = client.get(f"/api/models?site={quote(name, safe='')}&limit={PAGE}").seconds
            server_cpu += server.cpu_seconds() - cpu_before
            with on_server_core():
                walk, cpu = walk_seconds(str(library / name))
            walk_cpu += cpu
            ours[name] = min(ours.get(name, seconds), seconds)
            walks[name] = min(walks.get(name, walk), walk)
    note = "cold listing per site, best wall time (ours / walk): " + ", ".join(
        f"{ours[name] * 1000:.1f}/{walks[name] * 1000:.1f} ms" for name in sites
    )
    measure = f"cold /api/models ({len(sites)} sites)"
    rows = [
        Ratio(measure, sum(ours.values()), sum(walks.values()), "scandir walk", "s", 1.5, False),
        Ratio("  … CPU time", server_cpu / COLD_ROUNDS, walk_cpu / COLD_ROUNDS, "scandir walk", "s", 1.5, False),
    ]
    return rows, note


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
            rows += throughput_rows(f"cached /api/models{label}", runs["ours"], runs["peer"], "minimal", 0.8)
        notes.append(f"ours RSS after load: {format_value(ours.rss_kib(), 'KiB')}")

        cold, note = cold_listings(client, ours, library, sites)
        rows += cold
        notes.append(note)

    with start_nginx(library / sites[0], "autoindex on; autoindex_format json;") as nginx:
        autoindex = run_wrk(nginx.make_url("/"), duration_s=5)
    notes.append(f"reference, nginx autoindex json of the site folder: {autoindex.summary()}")
    return rows, notes


def main() -> int:
    pin_to_client_core()
    library = ensure_library("catalog-lib", *LIBRARY_ARGS)
    rows, notes = measure(library)
    print_table("catalog", rows, notes)
    return 0 if all(row.met for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
