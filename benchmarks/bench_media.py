"""Media throughput: one 1 GiB file through /media against nginx and a bare web.FileResponse.

Ours serves the file with its checks (safe path resolution, no precompressed siblings) and
headers (ETag, Last-Modified, Cache-Control, Accept-Ranges); the peers serve the same file
from the same page cache with nothing else to do. Downloads by curl and by a Python client
(http.client) on the client core, interleaved; each side's best of several, and its bytes
per server CPU-second over all rounds (robust when the machine is shared). The goal is
ours ÷ the faster peer ≥ 0.9. The server's peak RSS while serving is printed too (sendfile
should keep it flat).

Run: python -m benchmarks.bench_media
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from .data import random_file, warm_page_cache
from .load import Download, curl_download, python_download
from .processes import RssSampler, ServerProcess
from .report import Ratio, environment_note, format_value, print_table
from .servers import start_catalog_server, start_file_peer, start_nginx
from .settings import pin_to_client_core

RELATIVE = "media-lib/bench/big/big-1gib.mp4"  # site "bench", model "big"
SIZE = 1 << 30
ROUNDS = 6
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
        servers: dict[str, tuple[ServerProcess, str]] = {
            "ours": (ours, f"/media/{relative}"),
            "aiohttp FileResponse": (bare, f"/{relative}"),
            "nginx": (nginx, f"/{relative}"),
        }
        clients: dict[str, Callable[[str, int, int], Download]] = {"curl": curl_download, "python": python_download}
        best: dict[tuple[str, str], float] = {}
        cpu: dict[tuple[str, str], float] = {}
        peak_kib = 0
        for _ in range(ROUNDS):  # interleaved, so outside load falls on every side
            for client_name, client in clients.items():
                for server_name, (server, path) in servers.items():
                    key = (client_name, server_name)
                    cpu_before = server.cpu_seconds()
                    with RssSampler(server.pid) as rss:
                        download = client(server.make_url(path), SIZE, 1)
                    cpu[key] = cpu.get(key, 0.0) + server.cpu_seconds() - cpu_before
                    if server is ours:
                        peak_kib = max(peak_kib, rss.peak_kib)
                    best[key] = max(best.get(key, 0.0), download.best_bytes_per_s)
        per_cpu = {key: ROUNDS * SIZE / seconds for key, seconds in cpu.items() if seconds > 0}
        for client_name in clients:
            peers = {name: speed for (c, name), speed in best.items() if c == client_name and name != "ours"}
            peer_name = max(peers, key=lambda name: peers[name])
            ours_key = (client_name, "ours")
            rows.append(Ratio(f"1 GiB /media, {client_name}", best[ours_key], peers[peer_name], peer_name, "B/s", GOAL))
            cpu_peers = {name: rate for (c, name), rate in per_cpu.items() if c == client_name and name != "ours"}
            cpu_peer = max(cpu_peers, key=lambda name: cpu_peers[name])
            rows.append(
                Ratio("  … per server CPU-s", per_cpu.get(ours_key, 0.0), cpu_peers[cpu_peer], cpu_peer, "B/s", GOAL)
            )
            speeds = (
                f"{name} {format_value(best[(client_name, name)], 'B/s')}"
                f" ({format_value(per_cpu.get((client_name, name), 0.0), 'B/s')} per CPU-s)"
                for name in servers
            )
            notes.append(f"{client_name}: " + ", ".join(speeds))
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
