"""Media throughput: one 1 GiB file through /media against nginx and a bare web.FileResponse.

Ours serves the file with its checks (safe path resolution, no precompressed siblings) and
headers (ETag, Last-Modified, Cache-Control, Accept-Ranges); the peers serve the same file
from the same page cache with nothing else to do. Downloads by curl and by a Python client
(http.client) on the client core, interleaved; each side's best of several. The goal is
ours ÷ the faster peer ≥ 0.9. The server's peak RSS while serving is printed too (sendfile
should keep it flat).

Run: /work/main/.venv/bin/python -m benchmarks.bench_media
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from .common import (
    Download,
    Process,
    Ratio,
    RssSampler,
    curl_download,
    environment_note,
    format_value,
    pin_to_client_core,
    print_table,
    python_download,
    random_file,
    start_catalog_server,
    start_file_peer,
    start_nginx,
    warm_page_cache,
)

RELATIVE = "media-lib/bench/big/big-1gib.mp4"  # site "bench", model "big"
SIZE = 1 << 30
ROUNDS = 4
GOAL = 0.9


def measure(library: Path, file: Path) -> tuple[list[Ratio], list[str]]:
    relative = file.relative_to(library).as_posix()
    notes = [environment_note(), f"file: {file} ({SIZE:,} bytes, random, in the page cache)"]
    rows: list[Ratio] = []
    with (
        start_catalog_server(library) as ours,
        start_file_peer(library) as bare,
        start_nginx(library) as nginx,
    ):
        servers: dict[str, tuple[Process, str]] = {
            "ours": (ours, f"/media/{relative}"),
            "aiohttp FileResponse": (bare, f"/{relative}"),
            "nginx": (nginx, f"/{relative}"),
        }
        clients: dict[str, Callable[[str, int, int], Download]] = {"curl": curl_download, "python": python_download}
        best: dict[tuple[str, str], float] = {}
        peak_kib = 0
        for _ in range(ROUNDS):  # interleaved, so outside load falls on every side
            for client_name, client in clients.items():
                for server_name, (server, path) in servers.items():
                    with RssSampler(server.pid) as rss:
                        download = client(server.url(path), SIZE, 1)
                    if server is ours:
                        peak_kib = max(peak_kib, rss.peak_kib)
                    key = (client_name, server_name)
                    best[key] = max(best.get(key, 0.0), download.best_bytes_per_s)
        for client_name in clients:
            peers = {name: speed for (c, name), speed in best.items() if c == client_name and name != "ours"}
            peer_name = max(peers, key=lambda name: peers[name])
            rows.append(
                Ratio(
                    f"1 GiB /media, {client_name}",
                    best[(client_name, "ours")],
                    peers[peer_name],
                    peer_name,
                    "B/s",
                    GOAL,
                )
            )
            notes.append(
                f"{client_name}: "
                + ", ".join(f"{name} {format_value(best[(client_name, name)], 'B/s')}" for name in servers)
            )
        notes.append(f"ours peak RSS while serving: {format_value(peak_kib, 'KiB')}")
    return rows, notes


def main() -> int:
    pin_to_client_core()
    file = random_file(RELATIVE, SIZE)
    library = file.parents[2]
    warm_page_cache(file)
    rows, notes = measure(library, file)
    print_table("media", rows, notes)
    return 0 if all(row.met for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
