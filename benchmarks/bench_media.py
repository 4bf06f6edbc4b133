"""Media throughput through /media against nginx and a bare web.FileResponse app, on two inputs.

Ours serves with its checks (safe path resolution, no precompressed siblings) and headers (ETag,
Last-Modified, Cache-Control, Accept-Ranges); the peers serve the same files from the same page
cache with nothing else to do. Servers on the server core, clients on the client core.

1. Big files: 1 GiB and 256 MiB of random bytes (`media-lib/bench/big/`), downloaded whole by
   curl and by a Python client (http.client); each figure is the median of the downloads of a
   round (at least 1 GiB moved per figure, so the server's CPU time is not a few clock ticks).
2. Ordinary media: every .jpg/.mp4 of the small ordinary library's busiest model folder,
   requested in turn over keep-alive by wrk (a Lua path list), req/s and req per server CPU-s.

Each round measures ours and both peers one after the other (the order alternates); a row's
ratio is the median [range] of the rounds' ratios, never the best run: for big files ours ÷ the
faster peer of that round; for the small ordinary files ours ÷ the aiohttp FileResponse (nginx,
which answers them ~15× faster than any Python server, is a reference row). Goal ≥ 0.95. Also
printed: our peak RSS while serving (sendfile keeps it flat).

Run: python -m benchmarks.bench_media [--rounds 5] [--quick]
(`BENCH_SCALE=0.05` shrinks the big files for a smoke run.)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import quote

from .data import busiest_model, ordinary_library, random_file, scaled, scaled_name, warm_page_cache
from .load import Download, HttpClient, compare_wrk, curl_download, interleaved, path_cycle_script, python_download
from .processes import RssSampler, ServerProcess
from .report import (
    Ratio,
    add_round_options,
    best_per_round,
    chosen_rounds,
    environment_note,
    format_value,
    print_table,
    rounds_ratio,
    spread,
    throughput_rows,
)
from .servers import start_catalog_server, start_file_peer, start_nginx
from .settings import DATA_DIR, BenchmarkError, pin_to_client_core

MIB = 1 << 20
BIG_SIZES_MIB = (1024, 256)
GOAL = 0.95
FILE_PEER = "aiohttp FileResponse"
PEERS = ("nginx", FILE_PEER)
CLIENTS: dict[str, Callable[[str, int, int], Download]] = {"curl": curl_download, "python": python_download}


def start_trio(library: Path) -> dict[str, ServerProcess]:
    """Ours and both peers serving `library` (the caller stops them)."""
    servers: dict[str, ServerProcess] = {}
    try:
        servers["ours"] = start_catalog_server(library)
        servers["nginx"] = start_nginx(library)
        servers[FILE_PEER] = start_file_peer(library)
    except BaseException:
        stop_all(servers)
        raise
    return servers


def stop_all(servers: dict[str, ServerProcess]) -> None:
    for server in servers.values():
        server.stop()


def url_path(name: str, relative: str) -> str:
    """The URL path of a file of the library on server `name`: ours under /media/."""
    quoted = quote(relative, safe="/")
    return f"/media/{quoted}" if name == "ours" else f"/{quoted}"


def big_file_name(size: int) -> str:
    """`big-1gib.mp4`, `big-256mib.mp4`: named by size, so each size is written once."""
    return f"big-{size >> 30}gib.mp4" if size % (1 << 30) == 0 else f"big-{size // MIB}mib.mp4"


def big_files(rounds: int) -> tuple[list[Ratio], list[str]]:
    sizes = [scaled(mib) * MIB for mib in BIG_SIZES_MIB]
    library = DATA_DIR / scaled_name("media-lib")
    files = [random_file(f"{library.name}/bench/big/{big_file_name(size)}", size) for size in sizes]
    warm_page_cache(*files)
    notes = [
        f"big files: {', '.join(f'{f.name} ({f.stat().st_size:,} bytes)' for f in files)}; random, page cache warm"
    ]
    rows: list[Ratio] = []
    servers = start_trio(library)
    try:
        peak_kib = 0
        for file in files:
            size = file.stat().st_size
            repeats = max(1, round(sizes[0] / size))  # ≥ the biggest file's bytes per figure
            relative = file.relative_to(library).as_posix()
            speed, per_cpu, peak = download_rounds(servers, relative, size, repeats, rounds)
            peak_kib = max(peak_kib, peak)
            label = f"{size // MIB} MiB /media"
            for client_name in CLIENTS:
                rows += ours_against_faster_peer(f"{label}, {client_name}", client_name, speed, per_cpu)
                figures = ", ".join(f"{name} {spread(speed[(client_name, name)], 'B/s')}" for name in servers)
                notes.append(f"{label}, {client_name} ({repeats} per figure): {figures}")
        notes.append(f"ours peak RSS while serving: {format_value(peak_kib, 'KiB')}")
    finally:
        stop_all(servers)
    return rows, notes


Figures = dict[tuple[str, str], list[float]]  # (client, server) → one figure per round


def download_rounds(
    servers: dict[str, ServerProcess], relative: str, size: int, repeats: int, rounds: int
) -> tuple[Figures, Figures, int]:
    """Each round, each client downloads the file `repeats` times from each server (order
    alternating): bytes/s (the median download) and bytes per server CPU-second (CPU time comes
    in clock ticks, hence ≥ 1 GiB per figure), and our peak RSS in KiB."""
    speed: Figures = {}
    per_cpu: Figures = {}
    peak_kib = 0
    for round_number in range(rounds):
        for client_name, client in CLIENTS.items():
            for name in interleaved(list(servers), round_number):
                server = servers[name]
                cpu_before = server.cpu_seconds()
                with RssSampler(server.pid) as rss:
                    download = client(server.make_url(url_path(name, relative)), size, repeats)
                cpu = server.cpu_seconds() - cpu_before
                if name == "ours":
                    peak_kib = max(peak_kib, rss.peak_kib)
                speed.setdefault((client_name, name), []).append(download.median_bytes_per_s)
                per_cpu.setdefault((client_name, name), []).append(size * repeats / cpu if cpu else 0.0)
    return speed, per_cpu, peak_kib


def ours_against_faster_peer(
    measure: str,
    client_name: str,
    speed: Figures,
    per_cpu: Figures,
) -> list[Ratio]:
    """Two rows: bytes/s and bytes per server CPU-second, each against the faster peer per round."""
    rows = []
    for label, figures in ((measure, speed), ("  … per server CPU-s", per_cpu)):
        peer, peer_name = best_per_round({name: figures[(client_name, name)] for name in PEERS})
        rows.append(rounds_ratio(label, figures[(client_name, "ours")], peer, peer_name, "B/s", GOAL))
    return rows


def check_answers(servers: dict[str, ServerProcess], library: Path, relatives: Sequence[str]) -> None:
    """Each server answers every path with 200 and the file's bytes (once, before any timing)."""
    for name, server in servers.items():
        with HttpClient(server.url) as client:
            for relative in relatives:
                body = client.get(url_path(name, relative)).body
                if body != (library / relative).read_bytes():
                    raise BenchmarkError(f"{name} served other bytes for {relative}")


def ordinary_media(rounds: int) -> tuple[list[Ratio], list[str]]:
    library = ordinary_library()
    site, model, files = busiest_model(library)
    relatives = [file.relative_to(library).as_posix() for file in files]
    warm_page_cache(*files)
    total = sum(file.stat().st_size for file in files)
    measure = f"ordinary media ({len(files)} files)"
    notes = [
        f"ordinary media: every .jpg/.mp4 of {site}/{model} in {library} ({len(files)} files, "
        f"{total / len(files) / 1024:.0f} KiB on average), in turn over keep-alive (wrk)"
    ]
    servers = start_trio(library)
    try:
        check_answers(servers, library, relatives)
        with (
            path_cycle_script([url_path("ours", r) for r in relatives]) as ours_script,
            path_cycle_script([url_path("nginx", r) for r in relatives]) as peer_script,
        ):
            scripts = {name: ours_script if name == "ours" else peer_script for name in servers}
            runs = compare_wrk(
                {name: (server, "/") for name, server in servers.items()}, rounds=rounds, scripts=scripts
            )
    finally:
        stop_all(servers)
    notes += [f"{name}: {runs[name].summary()}" for name in runs]
    notes.append(
        "small files: the goal is against the bare aiohttp FileResponse (the same framework doing nothing "
        "else); nginx, a C server, answers far more requests and is shown for reference"
    )
    rows = throughput_rows(measure, runs["ours"], runs[FILE_PEER], FILE_PEER, GOAL)
    rows += throughput_rows("  … against nginx", runs["ours"], runs["nginx"], "nginx", None)
    return rows, notes


def main(argv: Sequence[str] = ()) -> int:
    """0 when every goal is met, 1 otherwise (`python -m benchmarks` calls it without arguments)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_media", description=(__doc__ or "").split("\n")[0]
    )
    add_round_options(parser)
    rounds = chosen_rounds(parser.parse_args(list(argv)))
    pin_to_client_core()
    met = True
    for title, measure in (("media, big files", big_files), ("media, ordinary files", ordinary_media)):
        rows, notes = measure(rounds)
        print_table(f"{title} ({rounds} rounds)", rows, [*notes, environment_note()])
        met = met and all(row.met for row in rows)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
